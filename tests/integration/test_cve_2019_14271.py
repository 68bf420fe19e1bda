"""CVE-2019-14271 regression test: `cp` must never load code from the container.

Docker's bug: `docker cp` ran its helper, docker-tar, chrooted into the container's root, as
root on the host and outside any other confinement. Archiving with owners made Go's os/user
(cgo) ask glibc for users and groups, and glibc's NSS read the *container's* /etc/nsswitch.conf
and dlopen()ed the container's libnss_*.so.2 (libnss_files.so.2 from the container's /lib): an
image or a compromised container that shipped its own libnss got its constructor run by the
copy, as the host's root. The naive design's flaw is that the lookup runs in a process whose
library search (and /etc) is the container's.

minirun's cp runs in the host's own Python, outside the container's root, and reads owners by
parsing the container's /etc/passwd and /etc/group as text (engine/users.py): nothing from the
container is ever loaded. The test plants a library whose constructor announces itself (a line
on stderr and a marker file at a host path) as libnss_files.so.2 and libnss_evil.so.2 in every
standard library directory, with an nsswitch.conf that names them, then copies in and out, with
and without -a, to and from tar streams: the marker must never appear. A naive chroot-and-lookup,
done the way docker-tar did, is shown to run the library, so the probe is a live one.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="real containers need root")

TAG = "EVIL-NSS-CONSTRUCTOR-RAN"
LIB_DIRS = ("lib", "lib64", "lib/x86_64-linux-gnu", "usr/lib", "usr/lib64",
            "usr/lib/x86_64-linux-gnu", "usr/local/lib")
NSSWITCH = ("passwd: evil files\ngroup: evil files\nshadow: evil files\n"
            "hosts: evil files\n")
SOURCE = r"""
#include <fcntl.h>
#include <unistd.h>

__attribute__((constructor)) static void from_the_container(void)
{
    static const char tag[] = TAG "\n";
    int fd;

    write(2, tag, sizeof tag - 1);
    fd = open(MARKER, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        write(fd, tag, sizeof tag - 1);
        close(fd);
    }
}

/* an NSS module's entry points, so a lookup through `evil` finds them */
int _nss_evil_getpwnam_r(void) { return 0; }  /* NSS_STATUS_NOTFOUND */
int _nss_evil_getgrnam_r(void) { return 0; }
"""


@pytest.fixture
def payload(tmp_path):
    """(the tree to copy into the container's /, the marker's host path)"""
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.skip("gcc is not installed (scripts/setup installs build-essential)")
    marker = tmp_path / "MARKER-container-code-ran-on-the-host"
    src = tmp_path / "evil.c"
    src.write_text(SOURCE)
    lib = tmp_path / "libevil.so"
    subprocess.run([gcc, "-shared", "-fPIC", "-O2", f'-DTAG="{TAG}"', f'-DMARKER="{marker}"',
                    "-o", str(lib), str(src)], check=True, capture_output=True)
    tree = tmp_path / "payload"
    for d in LIB_DIRS:
        (tree / d).mkdir(parents=True, exist_ok=True)
        for name in ("libnss_files.so.2", "libnss_evil.so.2", "libnss_compat.so.2"):
            shutil.copy(lib, tree / d / name)
    # the probe is live: loaded, it runs (checked in a throwaway process) and leaves the marker
    r = subprocess.run([sys.executable, "-c", "import ctypes, sys; ctypes.CDLL(sys.argv[1])",
                        str(lib)], capture_output=True, text=True)
    assert r.returncode == 0 and TAG in r.stderr and marker.exists(), r.stderr
    marker.unlink()
    return tree, marker


def clean(marker, *results) -> None:
    for r in results:
        assert TAG not in r.stderr and TAG not in (r.stdout if isinstance(r.stdout, str) else
                                                   r.stdout.decode(errors="replace"))
    assert not marker.exists(), "cp ran the container's libnss_*.so constructor on the host"


def test_cp_never_loads_the_containers_nss_modules(mr, payload, tmp_path):
    tree, marker = payload
    mr.ok("run", "-d", "--name", "evil", "--network", "none", "busybox", "sleep", "300")
    # the container's library directories and NSS configuration, as an image could ship them
    for top in ("lib", "lib64", "usr"):
        r = mr("cp", str(tree / top), f"evil:/{top}")
        assert r.returncode == 0, r.stderr
    nss = tmp_path / "nsswitch.conf"
    nss.write_text(NSSWITCH)
    mr.ok("cp", str(nss), "evil:/etc/nsswitch.conf")
    mr.ok("exec", "evil", "sh", "-c", "echo 'evil:x:1234:5678:evil:/:/bin/sh' >> /etc/passwd && "
          "echo 'evil:x:5678:' >> /etc/group && echo inside > /etc/owned && "
          "chown evil:evil /etc/owned")
    for d in LIB_DIRS:
        mr.ok("exec", "evil", "test", "-s", f"/{d}/libnss_files.so.2")
    assert mr.ok("exec", "evil", "cat", "/etc/nsswitch.conf") == NSSWITCH
    clean(marker)

    # host -> container, with and without -a (owners kept: a name in the container's files)
    f = tmp_path / "in.txt"
    f.write_text("from-the-host\n")
    os.chown(f, 1234, 5678)
    r1 = mr("cp", str(f), "evil:/tmp/plain.txt")
    r2 = mr("cp", "-a", str(f), "evil:/tmp/archive.txt")
    assert r1.returncode == 0 and r2.returncode == 0, (r1.stderr, r2.stderr)
    clean(marker, r1, r2)
    assert mr.ok("exec", "evil", "cat", "/tmp/plain.txt", "/tmp/archive.txt") == \
        "from-the-host\n" * 2
    assert mr.ok("exec", "evil", "stat", "-c", "%u:%g %U", "/tmp/archive.txt").split() == \
        ["1234:5678", "evil"]

    # container -> host, with and without -a
    out1, out2 = tmp_path / "out1", tmp_path / "out2"
    r3 = mr("cp", "evil:/etc/owned", str(out1))
    r4 = mr("cp", "-a", "evil:/etc/owned", str(out2))
    assert r3.returncode == 0 and r4.returncode == 0, (r3.stderr, r4.stderr)
    clean(marker, r3, r4)
    assert out1.read_text() == "inside\n" and out2.read_text() == "inside\n"

    # container -> a tar stream on stdout (owners and their names go into the headers)
    r5 = subprocess.run(mr.argv("cp", "evil:/etc/owned", "-"), env=mr.env, capture_output=True,
                        timeout=60)
    assert r5.returncode == 0, r5.stderr
    assert TAG.encode() not in r5.stderr
    clean(marker)
    with tarfile.open(fileobj=io.BytesIO(r5.stdout)) as t:
        m = t.getmember("owned")
        assert (m.uid, m.gid) == (1234, 5678)
        assert t.extractfile(m).read() == b"inside\n"

    # a tar stream on stdin -> the container, its member owned by a name the container knows
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("streamed.txt")
        data = b"streamed\n"
        info.size, info.uid, info.gid, info.uname, info.gname = len(data), 1234, 5678, "evil", \
            "evil"
        t.addfile(info, io.BytesIO(data))
    r6 = subprocess.run(mr.argv("cp", "-", "evil:/tmp"), env=mr.env, input=buf.getvalue(),
                        capture_output=True, timeout=60)
    assert r6.returncode == 0, r6.stderr
    assert TAG.encode() not in r6.stderr
    clean(marker)
    assert mr.ok("exec", "evil", "cat", "/tmp/streamed.txt") == "streamed\n"

    # Docker's naive way, for contrast: a helper chrooted into the container's root asks for a
    # user by name, and glibc's NSS loads the container's module, whose code runs as our root
    # (its marker cannot be written from inside the chroot; its stderr line shows it ran)
    rootfs = mr.record("evil")["GraphDriver"]["Data"]["MergedDir"]
    naive = subprocess.run([sys.executable, "-c", "import os, pwd, sys\n"
                            "os.chroot(sys.argv[1]); os.chdir('/')\n"
                            "try:\n    pwd.getpwnam('evil')\nexcept KeyError:\n    pass\n",
                            rootfs], capture_output=True, text=True, timeout=60)
    assert TAG in naive.stderr, (naive.returncode, naive.stderr)
    assert not marker.exists()
