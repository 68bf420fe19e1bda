"""Registry credentials in a Docker-compatible config.json: {"auths": {"host:port": {"auth": …}}}.

`minirun login` writes here and the registry client reads it. The format is Docker's (and podman's
auth.json), so a file from either works: `auth` is base64("user:password"); plain `username` /
`password` fields are read too. Docker keys Docker Hub as "https://index.docker.io/v1/" and some
tools write URLs ("https://host:port"): keys are matched by their bare host:port.

The file holds secrets: it is written with mode 0600 through a temp file, fsynced, and a rename
(base/atomicfile.py), so a crash never leaves a half-written or world-readable file. Keys we do not know (credsStore, ...) are kept.
"""

from __future__ import annotations

import base64
import json
import os

from ..base.atomicfile import write_atomic
from ..errors import RegistryError

ENV = "MINIRUN_AUTH_FILE"
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


def default_path(root: str) -> str:
    """$MINIRUN_AUTH_FILE, else <minirun root>/auth.json."""
    return os.environ.get(ENV) or os.path.join(root, "auth.json")


def normalize_host(key: str) -> str:
    """A key's bare host:port ("https://h:5000/v2/" -> "h:5000"); Hub aliases -> "docker.io"."""
    host = key.strip()
    if "://" in host:
        host = host.split("://", 1)[1]
    host = host.split("/", 1)[0].lower()
    return "docker.io" if host in _HUB_ALIASES else host


class AuthFile:
    """The credentials file at `path` (read each call: another `minirun login` may have run)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> dict:
        try:
            with open(self.path, "rb") as f:
                data = json.loads(f.read() or b"{}")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise RegistryError(f"auth file {self.path}: {e}") from None
        if not isinstance(data, dict) or not isinstance(data.get("auths", {}), dict):
            raise RegistryError(f"auth file {self.path}: not a config.json with an auths object")
        return data

    def save(self, data: dict) -> None:
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, mode=0o700, exist_ok=True)
        # The temporary file is created 0600: the secret is never readable by others.
        write_atomic(self.path, json.dumps(data, indent=2) + "\n", mode=0o600, fsync=True)

    def _key(self, auths: dict, host: str) -> str | None:
        want = normalize_host(host)
        for key in auths:
            if normalize_host(key) == want:
                return key
        return None

    def credentials(self, host: str) -> tuple[str, str] | None:
        """(user, password) stored for host, or None."""
        auths = self.load().get("auths", {})
        key = self._key(auths, host)
        entry = auths.get(key) if key is not None else None
        if not isinstance(entry, dict):
            return None
        if entry.get("auth"):
            try:
                user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise RegistryError(f"auth file {self.path}: bad auth entry for {key}") from None
            if not sep:
                raise RegistryError(f"auth file {self.path}: auth for {key} is not user:password")
            return user, password
        if entry.get("username") and "password" in entry:
            return entry["username"], entry["password"]
        return None

    def login(self, host: str, user: str, password: str) -> None:
        """Store credentials for host, replacing any it had (under whatever spelling of the key)."""
        if ":" in user:
            raise RegistryError(f"login {host}: a user name cannot contain ':'")
        data = self.load()
        auths = data.setdefault("auths", {})
        old = self._key(auths, host)
        if old is not None:
            del auths[old]
        # Docker's own key for Docker Hub, so `docker` reading this file finds the entry too.
        key = DOCKER_HUB_KEY if normalize_host(host) == "docker.io" else normalize_host(host)
        auths[key] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        self.save(data)

    def logout(self, host: str) -> bool:
        """Forget host's credentials; False if there were none."""
        data = self.load()
        auths = data.get("auths", {})
        key = self._key(auths, host)
        if key is None:
            return False
        del auths[key]
        self.save(data)
        return True
