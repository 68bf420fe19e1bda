"""The engine's writes and reads inside an image, end to end: `build` COPY/ADD into a base image
whose paths are symlinks to the host, a volume seeded from such an image, a USER looked up
through an /etc that is a symlink, a WORKDIR made through one.

Each image plants an absolute symlink naming a real directory of the host (a temp dir with a
decoy). A path joined to the rootfs and then opened, made or copied by name is resolved by the
host's kernel against the host's /: a naive engine writes into, or reads from, the host's
directory. minirun looks each path up with openat2 RESOLVE_IN_ROOT and makes every entry
relative to a directory fd with O_NOFOLLOW (kernel/resolve.py; runc CVE-2024-45310, Docker
CVE-2018-15664), so the same link is followed inside the image.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import write_files

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds and containers need root")


def build(mr, ctx: Path, tag: str) -> None:
    r = mr("build", "-t", tag, str(ctx), timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture
def host(tmp_path) -> Path:
    """The host directory the images' symlinks name; nothing may be written into it."""
    d = tmp_path / "host"
    d.mkdir()
    (d / "decoy").write_text("HOST\n")
    return d


def untouched(host: Path) -> None:
    assert sorted(os.listdir(host)) == ["decoy"], "the build wrote into the host's directory"


def test_copy_into_a_symlink_to_a_host_dir_writes_inside_the_image(mr, tmp_path, host):
    """The base image has /dest -> <host dir> (absolute) and /app/conf -> <host dir>;
    `COPY file /dest/`, `COPY tree/ /app/` (tree/conf/x) and `WORKDIR /dest/wd`. A naive
    builder opens rootfs + "/dest/file" on the host and writes the host's directory, and
    makedirs accepts /app/conf as a directory and writes tree/conf/x through it. Here the file
    lands in the image's own <host dir>, /app/conf becomes a directory, the host's stays as
    it was."""
    ctx = write_files(tmp_path / "ctx", {
        "Dockerfile": f"""
            FROM busybox
            RUN ln -s {host} /dest && mkdir /app && ln -s {host} /app/conf
            COPY file /dest/
            COPY tree/ /app/
            WORKDIR /dest/wd
            """,
        "file": "copied\n",
        "tree/conf/x": "conf\n"})
    build(mr, ctx, "resolve-copy:1")
    untouched(host)
    out = mr.ok("run", "--rm", "--network", "none", "resolve-copy:1", "sh", "-c",
                f"cat /dest/file {host}/file /app/conf/x; pwd; ls -d {host}/wd; "
                "test -L /app/conf || echo dir")
    assert out == f"copied\ncopied\nconf\n{host}/wd\n{host}/wd\ndir\n"


def test_volume_seeded_through_a_symlinked_parent_stays_in_the_image(mr, tmp_path, host):
    """The image has /p -> <host dir> and its own <host dir>/vol/f; `-v data:/p/vol` seeds the
    empty volume from the image at /p/vol. A naive engine copies rootfs + "/p/vol", which the
    host resolves to <host dir>/vol on the host: the host's files end up in the volume (and
    are readable by the container)."""
    (host / "vol").mkdir()
    (host / "vol" / "secret").write_text("HOST-SECRET\n")
    ctx = write_files(tmp_path / "ctx", {"Dockerfile": f"""
        FROM busybox
        RUN mkdir -p {host}/vol && echo image > {host}/vol/f && chown 7:8 {host}/vol/f && \\
            chmod 640 {host}/vol/f && ln -s {host} /p
        """})
    build(mr, ctx, "resolve-seed:1")
    try:
        out = mr.ok("run", "--rm", "--network", "none", "-v", "resolve-seed:/p/vol",
                    "resolve-seed:1", "sh", "-c", "ls /p/vol; stat -c '%u:%g %a' /p/vol/f")
        assert out == "f\n7:8 640\n"
        assert sorted(os.listdir(host / "vol")) == ["secret"]
        out = mr.ok("run", "--rm", "--network", "none", "-v", "resolve-seed:/mnt", "busybox",
                    "cat", "/mnt/f")
        assert out == "image\n"
    finally:
        mr("volume", "rm", "-f", "resolve-seed")


def test_user_looked_up_through_a_symlinked_etc_reads_the_images_passwd(mr, tmp_path, host):
    """The image's /etc/passwd -> <host dir>/passwd (absolute); the image's own copy there
    says `app` is 4321, the host's decoy says 6666. A naive lookup opens rootfs +
    "/etc/passwd" on the host and runs the process as 6666."""
    (host / "passwd").write_text("app:x:6666:6666::/:/bin/sh\n")
    ctx = write_files(tmp_path / "ctx", {"Dockerfile": f"""
        FROM busybox
        RUN mkdir -p {host} && echo app:x:4321:4321::/:/bin/sh > {host}/passwd && \\
            rm -f /etc/passwd && ln -s {host}/passwd /etc/passwd
        USER app
        """})
    build(mr, ctx, "resolve-user:1")
    assert mr.ok("run", "--rm", "--network", "none", "resolve-user:1", "id", "-u") == "4321\n"
    assert (host / "passwd").read_text() == "app:x:6666:6666::/:/bin/sh\n"
