"""`run`/`create` flags for the process, its logs and what it shares, and the Docker flags
minirun refuses.

    --group-add, --label-file, --mac-address, --volumes-from, -a/--attach,
    --log-driver, --log-opt, --cidfile, -q/--quiet     (apply(): into engine.RunOptions)
    --gpus, --runtime, --link, ...                    (refused(): one line each, exit 125)

Docker's CLI knows every flag in `docker run --help`; a script written for it must not meet
click's "no such option". The flags minirun will not support are therefore declared too, and
refused by name with the reason, before anything is made. --disable-content-trust is accepted:
minirun verifies no signatures, which is what the flag asks for (and Docker's default).
"""

from __future__ import annotations

import io
import os
import sys

import click

from ..errors import InvalidArgument, MinirunError, Unsupported

ATTACH_STREAMS = ("stdin", "stdout", "stderr")

# flag -> why minirun does not do it (each is declared as an option taking values).
REFUSED = {
    "--gpus": "GPU devices need the NVIDIA container toolkit's hooks, which minirun does not "
              "have",
    "--runtime": "minirun runs every container with its own OCI runtime (minirun-oci)",
    "--link": "legacy links are not supported: put both containers on a user network "
              "(minirun network create), where they reach each other by name",
    "--link-local-ip": "link-local addresses on a network are not supported",
    "--storage-opt": "the overlay storage here has no per-container options (size)",
    "--kernel-memory": "kernel memory limits are deprecated by the kernel and by Docker",
    "--cpu-count": "a Windows-only flag",
    "--cpu-percent": "a Windows-only flag",
    "--io-maxbandwidth": "a Windows-only flag",
    "--io-maxiops": "a Windows-only flag",
    "--cpu-rt-period": "real-time CPU scheduling groups (CONFIG_RT_GROUP_SCHED) are not "
                       "supported",
    "--cpu-rt-runtime": "real-time CPU scheduling groups (CONFIG_RT_GROUP_SCHED) are not "
                        "supported",
    "--memory-swappiness": "not supported (cgroup v2 has no per-group swappiness)",
    "--dns-option": "resolv.conf options are not supported (--dns and --dns-search are)",
    "--annotation": "OCI annotations from the command line are not supported (labels are "
                    "kept as org.minirun.label.* annotations)",
}
# flag -> (the one value minirun does, why not the others)
ONLY = {
    "--isolation": ("default", "isolation technologies are a Windows feature; on Linux only "
                               "'default'"),
    "--volume-driver": ("local", "only the local volume driver exists here"),
}


def _key(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


OPTIONS = [
    click.option("--group-add", "group_add", multiple=True,
                 help="Add a supplementary group (a name in the image's /etc/group, or a GID)."),
    click.option("--label-file", "label_files", multiple=True, type=click.Path(dir_okay=False),
                 help="Read labels from a file (k=v lines, # comments)."),
    click.option("--mac-address", default="", help="The container's MAC address on its first "
                 "network (02:42:ac:11:00:02)."),
    click.option("--volumes-from", "volumes_from", multiple=True,
                 help="Mount the volumes and binds of a container: CONTAINER[:ro|rw]."),
    click.option("-a", "--attach", "attach", multiple=True,
                 help="Attach to STDIN, STDOUT or STDERR (run: implies the foreground)."),
    click.option("--log-driver", default="", help="Logging driver: json-file (default), local "
                 "(json-file with a 20m x 5 limit here), none."),
    click.option("--log-opt", "log_opts", multiple=True,
                 help="Log driver option: max-size=10m, max-file=3."),
    click.option("--cidfile", default="", help="Write the container ID to the file."),
    click.option("-q", "--quiet", is_flag=True, help="Suppress the pull output."),
    click.option("--disable-content-trust", is_flag=True, help="Skip image verification "
                 "(minirun verifies no signatures: always the case)."),
    click.option("--use-api-socket", is_flag=True, help="(not supported)"),
    *[click.option(flag, _key(flag), multiple=True, hidden=True) for flag in REFUSED],
    *[click.option(flag, _key(flag), default="", hidden=True) for flag in ONLY],
]


def refused(kw: dict) -> None:
    """One line, exit 125, for the first flag given that minirun will not do."""
    for flag, why in REFUSED.items():
        if kw.get(_key(flag)):
            raise Unsupported(f"{flag} is not supported by minirun: {why}")
    for flag, (value, why) in ONLY.items():
        given = kw.get(_key(flag)) or ""
        if given and given != value:
            raise Unsupported(f"{flag} {given} is not supported by minirun: {why}")
    if kw.get("use_api_socket"):
        raise Unsupported("--use-api-socket is not supported by minirun: bind the API "
                          "service's socket yourself (-v /run/minirun.sock:/var/run/docker.sock)")


def read_label_files(paths: tuple[str, ...]) -> list[str]:
    """--label-file: Docker's format, one k=v a line; blank lines and # comments skipped."""
    out = []
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    text = line.strip()
                    if text and not text.startswith("#"):
                        out.append(text)
        except OSError as e:
            raise InvalidArgument(f"open {path}: {e.strerror}") from None
    return out


def attach_streams(values: tuple[str, ...]) -> list[str]:
    """-a stdin|stdout|stderr, checked (Docker: case-insensitive, each once)."""
    out = []
    for v in values:
        name = v.lower()
        if name not in ATTACH_STREAMS:
            raise InvalidArgument(f"invalid argument \"{v}\" for \"-a, --attach\" flag: valid "
                                  "streams are STDIN, STDOUT and STDERR")
        if name not in out:
            out.append(name)
    return out


def apply(opts, kw: dict) -> None:
    """Put this module's flags into RunOptions `opts` (labels from files go first: a -l of
    the same key wins, as in Docker)."""
    refused(kw)
    labels = {}
    for text in read_label_files(kw["label_files"]):
        k, _, v = text.partition("=")
        labels[k] = v
    opts.labels = {**labels, **opts.labels}
    opts.group_add = list(kw["group_add"])
    opts.mac_address = kw["mac_address"]
    opts.volumes_from = list(kw["volumes_from"])
    opts.attach = attach_streams(kw["attach"])
    opts.log_driver = kw["log_driver"]
    opts.log_opts = list(kw["log_opts"])


class CidFile:
    """--cidfile: Docker's client makes the file before the container (refusing one that
    exists: another container may own it), writes the ID once it is made, and removes the
    file if the create failed. The file stays after the container is gone, as Docker's."""

    def __init__(self, path: str) -> None:
        self.path, self.fd = path, -1
        if not path:
            return
        if os.path.lexists(path):
            raise InvalidArgument(f"container ID file found, make sure the other container "
                                  f"isn't running or delete {path}")
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise MinirunError(f"failed to create the container ID file: open {path}: "
                               f"{e.strerror}") from None

    def written(self, cid: str) -> None:
        if self.fd >= 0:
            os.write(self.fd, cid.encode())
            os.close(self.fd)
            self.fd = -1

    def abandon(self) -> None:
        """The create failed: nothing is left behind."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            try:
                os.unlink(self.path)
            except OSError:
                pass


class quiet:
    """-q: the pull's progress (written to stderr) goes nowhere; errors are still raised."""

    def __init__(self, on: bool) -> None:
        self.on, self.saved = on, None

    def __enter__(self) -> None:
        if self.on:
            self.saved, sys.stderr = sys.stderr, io.StringIO()

    def __exit__(self, *exc) -> None:
        if self.saved is not None:
            sys.stderr = self.saved
