"""Real server images for integration tests: Debian's nginx, postgres and redis in one image.

    import debian_images
    from debian_images import IMAGE

    debian_mr_home = debian_images.debian_mr_home  # the fixture, visible to pytest here

    @pytest.fixture(scope="module")
    def mr_home(debian_mr_home):         # conftest's `mr` now runs on a root that has IMAGE
        return debian_mr_home

    def test_x(mr):
        mr.ok("run", "--rm", IMAGE, "nginx", "-v")

tests/ is on sys.path (as for polling and oneline), so integration test modules import this by
name. Where the image comes from:

1. The tar. scripts/build-debian-image builds it with mmdebstrap from the Debian package
   registry (about 30 s, ~470 MB) into /var/cache/minirun/debian-images/, keyed by what goes
   into it; every later session, on this machine, finds it there at once and needs no network. It is asked
   once per test session (debian_tar(), cached in this process). If the build fails, the script's
   own `--check` tells a host that cannot build (mmdebstrap not installed, not root, mirror
   unreachable: the tests skip, with that line as the reason) from a build that broke (they
   fail, with the build's error line).
2. The image. `minirun import` of the tar, with the config a tar has not: CMD bash, PATH (an
   imported image has no Env, and the servers live in /usr/sbin), LANG=C.UTF-8 (initdb picks
   UTF-8 from it), and a label naming the tar. The import copies and unpacks the whole tar:
   3.9 s on the development VM. So it happens at most once per engine root: import_into()
   skips a root that already has IMAGE made from the same tar (the label says which), and
   debian_mr_home is one root for the whole session, shared by every module that uses it, not
   one per module like conftest's busybox mr_home. It is removed at the end of the session
   (after conftest's usual check that no container, volume, network or mount is left), so
   pytest's kept temp dirs do not hold half a gigabyte each.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "scripts" / "build-debian-image"
IMAGE = "minirun-test/debian-servers:1"
# What the tests run: the servers, their clients (psql comes with postgresql, redis-cli with
# redis-tools), curl for HTTP, ip and ps to look around.
PACKAGES = ("nginx-light", "postgresql", "redis-server", "redis-tools", "curl", "iproute2",
            "procps", "python3")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LABEL = "org.minirun.test.debian-tar"  # the cached tar's file name: which build an image is from
BUILD_TIMEOUT = 900  # mmdebstrap takes ~30 s here; a slow mirror may take minutes


@functools.cache
def _tar_outcome() -> tuple[str, str]:
    """("ok", tar path) | ("skip", why) | ("fail", why): asked once per session."""
    cmd = [str(BUILD), "--packages", ",".join(PACKAGES)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        return "fail", f"scripts/build-debian-image took more than {BUILD_TIMEOUT} s"
    if r.returncode == 0:
        return "ok", r.stdout.strip()
    error = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"
    check = subprocess.run([str(BUILD), "--check"], capture_output=True, text=True, timeout=60)
    if check.returncode != 0:
        return "skip", f"no Debian server image: {check.stderr.strip() or error}"
    return "fail", error


def debian_tar() -> Path:
    """The cached rootfs tar (built on first use); skips or fails the test as the host says."""
    outcome, what = _tar_outcome()
    if outcome == "skip":
        pytest.skip(what)
    if outcome == "fail":
        pytest.fail(what, pytrace=False)
    return Path(what)


def import_into(m, ref: str = IMAGE) -> str:
    """Make `ref` in m's root (m: a helpers.Minirun) from debian_tar(), unless that root already
    has it from the same tar. Returns ref."""
    tar = debian_tar()
    r = m("image", "inspect", ref)
    if r.returncode == 0:
        labels = json.loads(r.stdout)[0]["Config"].get("Labels") or {}
        if labels.get(LABEL) == tar.name:
            return ref
    m.ok("import", "-c", 'CMD ["bash"]', "-c", f"ENV PATH={PATH} LANG=C.UTF-8",
         "-c", f"LABEL {LABEL}={tar.name}", "-m", "scripts/build-debian-image: " +
         ",".join(PACKAGES), str(tar), ref, timeout=300)
    return ref


_session_home: list[Path] = []


@pytest.fixture(scope="session")
def debian_mr_home(tmp_path_factory):
    """A --root (home/root, home/run) with IMAGE in it, one per session; removed after.

    Each module that imports this fixture holds its own copy of it for pytest (a fixture is
    registered where it is found), so a session-scoped fixture would still run once per module:
    the first copy makes the home and tears it down at the session's end, the others share it."""
    if _session_home:
        yield _session_home[0]
        return
    from helpers import Minirun  # tests/integration is on sys.path for integration tests only

    home = tmp_path_factory.mktemp("debian-mr")
    _session_home.append(home)
    m = Minirun(home / "root", home / "run")
    try:
        import_into(m)
        yield home
    finally:
        _session_home.clear()
        try:
            m.cleanup()  # every container, volume, network; asserts no mount is left
        finally:
            shutil.rmtree(home, ignore_errors=True)
