"""Docker's credential helpers: `docker-credential-<name>` programs that keep registry secrets.

A config.json may hand secrets to a helper instead of keeping them itself: `credsStore` names one
for every registry, `credHelpers` one per registry ({"127.0.0.1:5000": "pass"}). The protocol is
docker-credential-helpers' (the same programs serve docker, podman and skopeo):

    docker-credential-<name> get     stdin: the server URL      stdout: {"ServerURL", "Username", "Secret"}
    docker-credential-<name> store   stdin: {"ServerURL", "Username", "Secret"}
    docker-credential-<name> erase   stdin: the server URL

A helper that has nothing for a server exits non-zero saying "credentials not found in native
keychain" (on stdout, as the library prints its errors): that is a miss, not a failure. The
helper is found on PATH, as Docker finds it; nothing else is run.
"""

from __future__ import annotations

import json
import subprocess

from ..errors import RegistryError

PREFIX = "docker-credential-"
NOT_FOUND = "credentials not found in native keychain"
# docker-credential-helpers' marker for an identity token kept in place of a password.
TOKEN_USER = "<token>"
TIMEOUT = 30  # a helper may ask a keyring daemon; a hung one must not hang a pull for ever


class Helper:
    """One credential helper program, `docker-credential-<name>`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.program = PREFIX + name

    def _call(self, verb: str, data: str) -> tuple[int, str]:
        try:
            p = subprocess.run([self.program, verb], input=data, capture_output=True, text=True,
                               timeout=TIMEOUT)
        except FileNotFoundError:
            raise RegistryError(f"credential helper {self.program}: not found in PATH: install "
                                "it, or remove it from credsStore/credHelpers in config.json"
                                ) from None
        except subprocess.TimeoutExpired:
            raise RegistryError(f"credential helper {self.program} {verb}: no answer in "
                                f"{TIMEOUT} s") from None
        except OSError as e:
            raise RegistryError(f"credential helper {self.program}: {e.strerror}") from None
        return p.returncode, (p.stdout.strip() or p.stderr.strip())

    def get(self, server: str) -> tuple[str, str] | None:
        """(user, secret) the helper keeps for `server`, or None on its "not found"."""
        out = self._answer("get", server)
        if out is None:
            return None
        try:
            answer = json.loads(out)
            user, secret = answer["Username"], answer["Secret"]
        except (ValueError, KeyError, TypeError):
            raise RegistryError(f"credential helper {self.program} get {server}: not a "
                                '{"Username", "Secret"} answer') from None
        if not isinstance(user, str) or not isinstance(secret, str) or not secret:
            return None
        return user, secret

    def store(self, server: str, user: str, secret: str) -> None:
        code, out = self._call("store", json.dumps({"ServerURL": server, "Username": user,
                                                    "Secret": secret}))
        if code != 0:
            raise RegistryError(f"credential helper {self.program} store {server}: "
                                f"{_first_line(out)}")

    def erase(self, server: str) -> bool:
        """Forget `server`; False if the helper had nothing for it."""
        return self._answer("erase", server) is not None

    def _answer(self, verb: str, server: str) -> str | None:
        """What the helper says to `verb server` (get, erase), None on its "not found"; any
        other failure is an error."""
        code, out = self._call(verb, server)
        if code != 0:
            if NOT_FOUND in out:
                return None
            raise RegistryError(f"credential helper {self.program} {verb} {server}: "
                                f"{_first_line(out)}")
        return out


def _first_line(text: str) -> str:
    return (text.splitlines() or ["failed with no message"])[0]
