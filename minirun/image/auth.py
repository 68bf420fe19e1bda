"""Registry credentials in Docker's config.json format: {"auths": {"host:port": {"auth": …}}}.

Two such files are read, in this order (`Credentials`):
  1. Docker's own, $DOCKER_CONFIG/config.json or ~/.docker/config.json (`DockerConfig`): what
     `docker login` wrote is used as it is, and `minirun login` writes there, as `docker login`
     does. Its `credHelpers` (per registry) and `credsStore` (every other registry) hand the
     secrets to `docker-credential-<name>` programs (credhelper.py) instead of the file.
  2. minirun's own, <root>/auth.json or $MINIRUN_AUTH_FILE (`AuthFile`): what older minirun
     versions' `login` and the API service's POST /auth keep. Read when Docker's file has
     nothing for the registry, so existing logins keep working.
`minirun logout` forgets a registry in both, so that no fallback brings it back.

The format is Docker's (and podman's
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
DOCKER_CONFIG_ENV = "DOCKER_CONFIG"
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


def docker_config_path() -> str:
    """Docker's config.json: $DOCKER_CONFIG/config.json, else ~/.docker/config.json."""
    d = os.environ.get(DOCKER_CONFIG_ENV) or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(d, "config.json")


def server_url(host: str) -> str:
    """The key Docker files a registry under, and the ServerURL its helpers get: Docker Hub's
    historical "https://index.docker.io/v1/", every other registry its bare host:port."""
    host = normalize_host(host)
    return DOCKER_HUB_KEY if host == "docker.io" else host


class DockerConfig(AuthFile):
    """Docker's config.json, with its credential helpers (docker/cli's credentials package).

    A registry with a helper (credHelpers[host], else credsStore) has its secret in the helper;
    the file keeps only an empty entry under `auths` saying the registry is logged in to, as
    Docker's native store writes it. Without a helper, the secret is base64 in `auths`."""

    def __init__(self, path: str | None = None) -> None:
        super().__init__(path or docker_config_path())

    def helper_name(self, host: str, data: dict | None = None) -> str | None:
        """The credential helper for host: credHelpers' entry, else credsStore, else None."""
        data = self.load() if data is None else data
        helpers = data.get("credHelpers")
        if isinstance(helpers, dict):
            key = self._key(helpers, host)
            if key is not None and helpers[key]:
                return str(helpers[key])
        store = data.get("credsStore")
        return str(store) if store else None

    def _helper(self, host: str, data: dict | None = None):
        name = self.helper_name(host, data)
        if not name:
            return None
        from .credhelper import Helper  # lazily: subprocess is for the few who have a helper

        return Helper(name)

    def credentials(self, host: str) -> tuple[str, str] | None:
        helper = self._helper(host)
        if helper is None:
            return super().credentials(host)
        return helper.get(server_url(host))

    def login(self, host: str, user: str, password: str) -> None:
        if ":" in user:
            raise RegistryError(f"login {host}: a user name cannot contain ':'")
        data = self.load()
        helper = self._helper(host, data)
        if helper is None:
            super().login(host, user, password)
            return
        helper.store(server_url(host), user, password)
        auths = data.setdefault("auths", {})
        old = self._key(auths, host)
        if old is not None:
            del auths[old]
        auths[server_url(host)] = {}  # Docker's native store: the name, never the secret
        self.save(data)

    def logout(self, host: str) -> bool:
        helper = self._helper(host)
        erased = helper.erase(server_url(host)) if helper is not None else False
        return super().logout(host) or erased


class Credentials:
    """Where commands find registry credentials: Docker's config.json first, minirun's own
    file (`minirun_file`, may be None) as the fallback; see the module docstring."""

    def __init__(self, minirun_file: str | None, docker: DockerConfig | None = None) -> None:
        self.docker = docker or DockerConfig()
        self.minirun = AuthFile(minirun_file) if minirun_file else None

    def get(self, host: str) -> tuple[str, str] | None:
        found = self.docker.credentials(host)
        if found is None and self.minirun is not None:
            found = self.minirun.credentials(host)
        return found

    def store(self, host: str, user: str, password: str) -> None:
        """Keep them in Docker's config.json (through its helper, if it names one)."""
        self.docker.login(host, user, password)

    def erase(self, host: str) -> bool:
        """Forget host in both files; False if neither had it."""
        erased = self.docker.logout(host)
        if self.minirun is not None:
            erased = self.minirun.logout(host) or erased
        return erased
