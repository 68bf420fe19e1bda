"""Image references, parsed and normalized as Docker does (distribution/reference's rules).

    [registry[:port]/]path[:tag][@digest]

  alpine                          -> docker.io/library/alpine:latest
  user/repo                       -> docker.io/user/repo:latest
  registry:5000/x/y:tag           -> registry:5000/x/y:tag
  localhost/x                     -> localhost/x:latest
  name@sha256:<64 hex>            -> docker.io/library/name@sha256:...        (no tag implied)
  name:tag@sha256:<64 hex>        -> both kept: the digest is what is pulled, the tag what it is named

Why these rules and no others: a name typed for `docker pull` must mean the same image here, and
the canonical form is what the store keys tags by, so two spellings of one image ("alpine",
"docker.io/alpine", "index.docker.io/library/alpine:latest") must normalize to one string.

- The first path component is a registry only if it contains "." or ":" or is "localhost";
  otherwise the name is on Docker Hub, and a one-component Hub name is an official image under
  "library/". (distribution/reference >= 0.5 also treats an uppercase first component as a host;
  we keep the older rule and report it as an uppercase repository name, which is the usual typo.)
- Repository components are lowercase letters and digits joined by ".", "_", "__" or dashes;
  at most 255 characters in all. Registry hosts are DNS names, IPv4 or [IPv6], with a port.
- Tags match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; digests are algorithm:hex of the right length.
- A bare 64-hex string is an image ID, never a repository name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..errors import ReferenceError

DEFAULT_REGISTRY = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"  # docker.io is a name, not a host that serves /v2/
LEGACY_REGISTRY = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
MAX_PATH = 255

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = re.compile(
    rf"(?P<host>{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::(?P<port>[0-9]+))?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_ID = re.compile(r"[a-f0-9]{64}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
# Algorithms we can verify, with their hex lengths (go-digest's registered set).
_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass(frozen=True)
class Reference:
    """A normalized image reference: where the image lives and which one.

    `tag` is "latest" when neither a tag nor a digest was given, None when only a digest was.
    """

    registry: str  # "docker.io", "127.0.0.1:5000", "[::1]:5000"
    repository: str  # the path within the registry: "library/alpine", "x/y"
    tag: str | None = None
    digest: str | None = None  # "sha256:<hex>"

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse and normalize `text`; raises ReferenceError (one line) if it is not a reference."""
        return parse(text)

    @property
    def repo(self) -> str:
        """The canonical repository without tag or digest: docker.io/library/alpine."""
        return f"{self.registry}/{self.repository}"

    @property
    def name(self) -> str:
        """The canonical full reference: docker.io/library/alpine:latest (what the store keys by)."""
        return self.repo + self._suffix()

    @property
    def familiar_repo(self) -> str:
        """The repository as Docker shows it: docker.io and library/ dropped (alpine, user/repo)."""
        if self.registry != DEFAULT_REGISTRY:
            return self.repo
        path = self.repository
        if path.startswith(OFFICIAL_PREFIX) and "/" not in path[len(OFFICIAL_PREFIX):]:
            return path[len(OFFICIAL_PREFIX):]
        return path

    @property
    def familiar(self) -> str:
        """How `docker images` writes it: alpine:latest, 127.0.0.1:5000/busybox:latest."""
        return self.familiar_repo + self._suffix()

    @property
    def manifest_ref(self) -> str:
        """What to ask the registry for (GET /v2/<repository>/manifests/<this>): the digest wins."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def api_host(self) -> str:
        """host[:port] that serves the distribution API for this registry."""
        return DOCKER_HUB_API if self.registry == DEFAULT_REGISTRY else self.registry

    @property
    def insecure_default(self) -> bool:
        """Plain HTTP allowed without asking: localhost, 127.0.0.0/8 and ::1 (Docker's default)."""
        match = _HOST.fullmatch(self.registry)
        host = match["host"].strip("[]") if match else ""
        if host == "localhost":
            return True
        import ipaddress  # (~1 ms: only a push or pull asks)

        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def with_tag(self, tag: str) -> Reference:
        """repo:tag, digest dropped (a RepoTag as `docker tag` makes it)."""
        if not _TAG.fullmatch(tag):
            raise ReferenceError(f"{self.repo}:{tag}", "tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        """repo@digest, tag dropped (a RepoDigest as the store records it after a pull)."""
        _check_digest(f"{self.repo}@{digest}", digest)
        return replace(self, tag=None, digest=digest)

    def __str__(self) -> str:
        return self.name

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse(text: str) -> Reference:
    """Parse a reference as `docker pull` does; see the module docstring for the rules."""
    if not text:
        raise ReferenceError(text, "repository name must have at least one component")
    if _ID.fullmatch(text):
        raise ReferenceError(text, "a 64-hex string is an image ID, not a repository name")

    name, at, digest = text.partition("@")
    if at:
        _check_digest(text, digest)
    # The tag is after the last ":" that follows the last "/" (a ":" before it is a port).
    colon = name.rfind(":")
    tag = None
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise ReferenceError(text, f"tag ({tag}) must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")

    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
        if not _HOST.fullmatch(registry):
            raise ReferenceError(text, f"registry ({registry}) must be host[:port] "
                                       "(DNS name, IPv4 or [IPv6])")
    else:
        registry, path = DEFAULT_REGISTRY, name
    if registry == LEGACY_REGISTRY:
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = OFFICIAL_PREFIX + path

    for component in path.split("/"):
        if _COMPONENT.fullmatch(component):
            continue
        if _COMPONENT.fullmatch(component.lower()):
            raise ReferenceError(text, f"repository name ({path}) must be lowercase")
        if not component:
            raise ReferenceError(text, "repository name has an empty path component")
        raise ReferenceError(text, f"repository name component ({component}) must be lowercase letters "
                                   "and digits joined by '.', '_', '__' or '-'")
    if len(path) > MAX_PATH:
        raise ReferenceError(text, f"repository name must not be more than {MAX_PATH} characters")

    if tag is None and not at:
        tag = DEFAULT_TAG
    return Reference(registry, path, tag, digest if at else None)


def _check_digest(text: str, digest: str) -> None:
    if not _DIGEST.fullmatch(digest):
        raise ReferenceError(text, f"digest ({digest}) must be algorithm:hex, e.g. sha256:<64 hex>")
    algorithm, _, hexpart = digest.partition(":")
    if algorithm not in _ALGORITHMS:
        raise ReferenceError(text, f"unsupported digest algorithm ({algorithm})")
    if len(hexpart) != _ALGORITHMS[algorithm]:
        raise ReferenceError(text, f"{algorithm} digest must have {_ALGORITHMS[algorithm]} hex digits, "
                                   f"not {len(hexpart)}")
    if hexpart != hexpart.lower():
        raise ReferenceError(text, "digest hex must be lowercase")
