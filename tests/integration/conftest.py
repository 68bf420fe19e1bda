"""Fixtures for integration tests: a busybox rootfs, bundles, and runtimes to drive.

    def test_x(bundle, oci):
        b = bundle(args=["sh", "-c", "echo hi"])        # a bundle dir with config.json
        r = oci("run", "--bundle", b, "c1")              # minirun-oci with a private --root
        assert r.stdout == "hi\\n"

`runc` is the same runner for runc (the oracle); both clean up their containers at teardown.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from helpers import OCI, REPO, Minirun, Runtime, build_rootfs, write_bundle


@pytest.fixture(scope="session")
def rootfs_dir(tmp_path_factory) -> Path:
    """A busybox rootfs built once per session by scripts/build-rootfs."""
    return build_rootfs(tmp_path_factory.mktemp("rootfs") / "rootfs")


@pytest.fixture
def oci(tmp_path):
    rt = Runtime(OCI, tmp_path / "oci-state")
    yield rt
    rt.cleanup()


@pytest.fixture
def runc(tmp_path):
    if not shutil.which("runc"):
        pytest.skip("runc is not installed (scripts/setup installs it)")
    rt = Runtime(shutil.which("runc"), tmp_path / "runc-state")
    yield rt
    rt.cleanup()


@pytest.fixture
def bundle(tmp_path, rootfs_dir):
    """bundle(args=[...], **changes) -> path of a fresh bundle dir.

    The config is `minirun-oci spec`'s default with terminal off, then the keyword changes
    applied to process (args, env, cwd, user ...) or the top level, then `edit(cfg)` if given.
    The rootfs is shared (read-only default config); pass own_rootfs=True for a private copy.
    """
    counter = [0]

    def make(args=None, edit=None, own_rootfs=False, **changes) -> str:
        counter[0] += 1
        return write_bundle(tmp_path / f"bundle{counter[0]}", rootfs_dir, args=args, edit=edit,
                            own_rootfs=own_rootfs, **changes)

    return make


@pytest.fixture
def cid() -> str:
    return "t-" + uuid.uuid4().hex[:10]


class ConsoleServer:
    """The caller's side of --console-socket, as conmon does it: a listening unix socket that
    receives the pty master fd (SCM_RIGHTS) from each runtime that connects.

        srv = console_server()                         # srv.path goes to --console-socket
        master = srv.master()                          # the fd the runtime sent
        out = srv.read_until(master, "done")           # what the container wrote
    """

    def __init__(self, path: Path) -> None:
        import queue
        import socket
        import threading

        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(4)
        self.fds: "queue.Queue[int]" = queue.Queue()
        self.received: list[int] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import array
        import socket

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with conn:
                fds = array.array("i")
                try:
                    _, anc, _, _ = conn.recvmsg(1024, socket.CMSG_LEN(fds.itemsize))
                except OSError:
                    continue
                for level, kind, data in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(data[:fds.itemsize])
                        self.fds.put(fds[0])

    def master(self, timeout: float = 10) -> int:
        """The next pty master fd a runtime sent (fails the test if none arrives in time)."""
        import queue

        try:
            fd = self.fds.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no pty master arrived on {self.path} in {timeout}s") from None
        self.received.append(fd)
        return fd

    @staticmethod
    def read_until(master: int, text: str | None = None, timeout: float = 10) -> str:
        """Read the pty until `text` shows up (None: until the slave side is closed)."""
        import select
        import time

        out = b""
        deadline = time.monotonic() + timeout
        while text is None or text.encode() not in out:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([master], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every slave fd is closed
                break
            if not chunk:
                break
            out += chunk
        return out.decode(errors="replace")

    def close(self) -> None:
        import socket

        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=5)
        while not self.fds.empty():
            self.received.append(self.fds.get())
        for fd in self.received:
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture
def console_server(tmp_path):
    """console_server() -> a ConsoleServer listening in tmp_path; closed at teardown."""
    made: list[ConsoleServer] = []

    def make() -> ConsoleServer:
        srv = ConsoleServer(tmp_path / f"console{len(made)}.sock")
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.close()


# --- the front end ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def busybox_layout(tmp_path_factory) -> Path:
    """The offline demo image (scripts/build-image), as an OCI layout, built once."""
    import subprocess

    out = tmp_path_factory.mktemp("image") / "busybox"
    subprocess.run([str(REPO / "scripts" / "build-image"), str(out)], check=True,
                   capture_output=True)
    return out


@pytest.fixture(scope="module")
def mr_home(tmp_path_factory, busybox_layout):
    """A --root with busybox:latest loaded, shared by one test module's tests."""
    home = tmp_path_factory.mktemp("mr")
    m = Minirun(home / "root", home / "run")
    m.ok("load", "-i", str(busybox_layout))
    yield home
    m.cleanup()


@pytest.fixture
def mr(mr_home):
    """minirun on the module's --root; every container and volume a test made goes after it."""
    m = Minirun(mr_home / "root", mr_home / "run")
    yield m
    m.cleanup()


@pytest.fixture(scope="session")
def probe(tmp_path_factory) -> str:
    """tests/integration/probe.c built static: raw system calls busybox has no applet for
    (keyctl, bpf, clone3, int 0x80 ...), run inside containers."""
    import subprocess

    gcc = shutil.which("gcc")
    if not gcc:
        pytest.skip("gcc is not installed (scripts/setup installs build-essential)")
    out = tmp_path_factory.mktemp("probe") / "probe"
    subprocess.run([gcc, "-static", "-O2", "-o", str(out), str(Path(__file__).parent / "probe.c")],
                   check=True)
    return str(out)


@pytest.fixture(scope="session")
def probe_dir(probe, tmp_path_factory) -> str:
    """A directory with probe.sh (what a container may see and do) and the static probe, to be
    bind-mounted at /t: `minirun run -v DIR:/t:ro busybox /t/probe.sh`."""
    d = tmp_path_factory.mktemp("probe-dir")
    shutil.copy(probe, d / "probe")
    shutil.copy(Path(__file__).parent / "probe.sh", d / "probe.sh")
    os.chmod(d, 0o755)
    return str(d)


@pytest.fixture
def subids():
    """/etc/subuid and /etc/subgid as they were before the test, put back after it (minirun adds
    its "minirun" ranges on first use of --userns-remap default / --userns=auto). Yields
    first(NAME): NAME's first subordinate uid."""
    files = ("/etc/subuid", "/etc/subgid")
    saved = {p: (Path(p).read_text() if os.path.exists(p) else None) for p in files}

    def first(name: str) -> int:
        from minirun.engine.userns import SUBUID, ranges

        return ranges(SUBUID, name)[0][0]

    yield first
    for p, text in saved.items():
        if text is None:
            if os.path.exists(p):
                os.unlink(p)
        else:
            Path(p).write_text(text)


@pytest.fixture
def searchable():
    """searchable(*paths): give every directory above (and at) each path the search bit for
    others until the test ends -- a user-namespaced container's root is an ordinary host uid,
    and pytest's own temporary directories are 0700."""
    changed: list[tuple[Path, int]] = []

    def make(*paths) -> None:
        for p in paths:
            d = Path(p)
            for anc in [d, *d.parents]:
                mode = anc.stat().st_mode
                if not mode & 0o001:
                    os.chmod(anc, (mode | 0o001) & 0o7777)
                    changed.append((anc, mode & 0o7777))

    yield make
    for anc, mode in reversed(changed):
        os.chmod(anc, mode)
