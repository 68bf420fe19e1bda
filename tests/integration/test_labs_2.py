"""Labs 05-08 (docs/labs/): cgroups, images, networking, user networks with limits.

For each lab: (a) the page's ```sh blocks run, as one bash -e script, as an attendee would, and
leave nothing behind; (b) `scripts/lab check N` fails with useful lines before the exercise;
(c) the lab's SOLUTION runs; (d) the check passes; (e) cleanup leaves nothing: no labNN-*
container, network, volume, image (nor the layers of the image the solution built), bridge,
published-port rule, mount or /tmp/labNN* path. A second test per lab does the exercise half
wrong and checks that the check names what is wrong and how to fix it.

They use the default root (/var/lib/minirun) and its busybox image, as the attendees do; every
name they make starts with labNN, so they never touch anything else (except `builder prune`
in lab 6's cleanup, which forgets the whole build cache: it is a cache).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess

import pytest

from labrunner import bash, cleaned, lab, labs, page
from labrunner import module as _module

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="the labs make containers and cgroups: they need root")

CG = "/sys/fs/cgroup"
LAYERS = "/var/lib/minirun/image/layers"
# the host ports each lab's page and exercise publish
PORTS = {5: (), 6: (), 7: (8077, 8087), 8: (8078, 8088)}


# --- what the host must have -----------------------------------------------------------------

def cgroup_v2() -> bool:
    return os.path.exists(f"{CG}/cgroup.controllers")


def has_controller(name: str) -> bool:
    if cgroup_v2():
        try:
            with open(f"{CG}/cgroup.controllers") as f:
                return name in f.read().split()
        except OSError:
            return False
    return os.path.isdir(f"{CG}/{name}")


def port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def need_host(n: int, page_too: bool) -> None:
    """Skip with the reason when this host lacks what lab n needs."""
    r = labs.minirun("image", "inspect", "busybox:latest")
    if r.returncode != 0:
        pytest.skip("busybox:latest is not in the default root (scripts/setup loads it)")
    if n in (5, 8):
        for ctl in ("memory", "cpu", "pids"):
            if not has_controller(ctl):
                pytest.skip(f"lab {n} needs the {ctl} cgroup controller, which this host lacks")
    if n == 5 and not os.path.exists(f"{CG}/memory/memory.memsw.limit_in_bytes") \
            and not cgroup_v2():
        pytest.skip("lab 5's OOM kill uses --memory-swap: this v1 host has no swap accounting "
                    "(boot with swapaccount=1)")
    if n in (7, 8):
        for tool in ("nft", "ip") + (("curl", "wget") if page_too else ()):
            if not shutil.which(tool):
                pytest.skip(f"lab {n} needs `{tool}`, which is not installed")
        for port in PORTS[n]:
            if port_taken(port) and not leftovers(n):
                pytest.skip(f"lab {n} publishes host port {port}, which something else holds")
    if page_too and n in (5, 8) and cgroup_v2():
        pytest.skip(f"lab {n}'s page reads the v1 files of the workshop VM (hybrid layout); "
                    "this host is cgroup v2")


# --- what a lab could leave behind -----------------------------------------------------------

def _lines(r: subprocess.CompletedProcess) -> list[str]:
    return [x.strip() for x in r.stdout.splitlines() if x.strip()]


def layer_dirs() -> set[str]:
    try:
        return {d for d in os.listdir(LAYERS) if not d.endswith(".json")}
    except OSError:
        return set()


def leftovers(n: int) -> list[str]:
    prefix = f"lab{n:02d}"
    found = [f"container {c}" for c in labs.names(prefix)]
    found += [f"oci container {c}" for c in labs.oci_ids(prefix)]
    found += [f"network {x}" for x in _lines(labs.minirun("network", "ls", "--format", "{{.Name}}"))
              if x.startswith(prefix)]
    found += [f"volume {x}" for x in _lines(labs.minirun("volume", "ls", "-q"))
              if x.startswith(prefix)]
    found += [f"image {x}" for x in _lines(labs.minirun(
        "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={prefix}*"))]
    if n == 6:
        found += [f"untagged lab=06 image {x}" for x in _lines(labs.minirun(
            "images", "-q", "--filter", "dangling=true", "--filter", "label=lab=06"))]
    found += [f"mount {m['point']}" for m in labs.mountinfo("self")
              if prefix in m["point"] or any(prefix in o for o in m["super"])]
    found += [f"path {p}" for p in glob.glob(f"/tmp/{prefix}*")]
    r = labs.run(["ip", "-d", "link", "show"])
    found += [f"bridge with {ln.strip()!r}" for ln in r.stdout.splitlines()
              if "alias minirun network " + prefix in ln]
    if PORTS[n] and shutil.which("nft"):
        table = labs.run(["nft", "list", "table", "ip", "minirun"]).stdout
        found += [f"nft rule for port {p}" for p in PORTS[n] if f"dport {p} " in table]
    return found


@pytest.fixture
def clean_lab(request):
    yield from cleaned(request.param, leftovers)


# --- the walk through each lab ---------------------------------------------------------------

@pytest.mark.parametrize("clean_lab", [5, 6, 7, 8], indirect=True)
def test_lab(clean_lab):
    n = clean_lab
    mod = _module(n)
    assert mod.TITLE and mod.SOLUTION.strip()
    need_host(n, page_too=True)
    layers_before = layer_dirs()

    # (a) the page's runnable blocks, as an attendee would run them
    script = labs.page_script(page(n))
    assert script.strip(), f"{page(n)} has no ```sh block"
    r = bash(script)
    assert r.returncode == 0, f"{page(n)}'s sh blocks failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert leftovers(n) == [], f"{page(n)}'s sh blocks left this behind"
    if n == 6:
        assert layer_dirs() <= layers_before, "the page's builds left layers in the store"

    # (b) not done yet: exit 1, every line names the lab and says something useful
    r = lab("check", str(n))
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines and all(ln.startswith(f"lab {n}: ") for ln in lines), r.stdout
    assert all(len(ln) > 40 and "check itself failed" not in ln for ln in lines), r.stdout
    assert all("`" in ln for ln in lines), f"each problem should say what to run:\n{r.stdout}"

    # (c) the exercise, done by its solution (which `lab solution` prints)
    r = lab("solution", f"{n:02d}")
    assert r.returncode == 0 and r.stdout.strip() == mod.SOLUTION.strip()
    r = bash(mod.SOLUTION)
    assert r.returncode == 0, f"lab {n}'s SOLUTION failed:\n{r.stdout}\n{r.stderr}"
    built = None
    if n == 6:
        built = labs.minirun("image", "inspect", "-f",
                             "{{.Id}} {{range .RootFS.Layers}}{{.}} {{end}}", "lab06-app:1")
        assert built.returncode == 0, built.stderr

    # (d) done: exit 0, one ok line
    r = lab("check", f"{n:02d}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"lab {n}: ok — "), r.stdout
    assert len(r.stdout.splitlines()) == 1, r.stdout

    # (e) cleanup leaves nothing, and the check fails again
    r = lab("cleanup", str(n))
    assert r.returncode == 0, r.stdout + r.stderr
    assert leftovers(n) == []
    if built is not None:
        image_id, *diff_ids = built.stdout.split()
        all_ids = labs.minirun("images", "-a", "-q", "--no-trunc").stdout.split()
        assert image_id not in all_ids
        kept = [d[7:19] for d in diff_ids if d[7:19] not in layers_before and
                os.path.exists(os.path.join(LAYERS, d[7:19]))]
        assert kept == [], f"cleanup left the built image's layers in the store: {kept}"
    assert lab("check", str(n)).returncode == 1


# --- a half-done exercise: the check must say what is wrong ----------------------------------

HALF_DONE = {
    5: ("minirun run -d --name lab05-capped -m 64m --pids-limit 30 busybox sleep 3600\n"
        "minirun run --name lab05-oom -m 16m busybox true\n",
        ["the exercise wants 48 MiB", "minirun update -m 48m lab05-capped",
         "a quarter of one CPU", "--cpus 0.25", "OOMKilled", "says false"]),
    6: ("mkdir -p /tmp/lab06 && cd /tmp/lab06\n"
        "echo 'hello from lab06' > message.txt\n"
        "printf 'FROM busybox\\nCOPY message.txt /message.txt\\n' > Dockerfile\n"
        "minirun build -q -t lab06-app:1 .\n",
        ["1 layer(s) of its own", "no label lab=06", "no RUN step", "should print a line",
         "cannot read /tmp/lab06/app.tar"]),
    7: ("minirun run -d --name lab07-web busybox httpd -f -p 80\n"
        "mkdir -p /tmp/lab07 && echo eth0 > /tmp/lab07/veth\n",
        ["not published on host port 8087", "-p 8087:80", "/tmp/lab07/veth says 'eth0'",
         "iflink"]),
    8: ("minirun network create lab08-net\n"
        "minirun run -d --name lab08-api --network lab08-net -m 32m -p 8088:80 busybox "
        "sh -c 'mkdir -p /www && echo hello from lab08-api > /www/index.html && "
        "exec httpd -f -p 80 -h /www'\n"
        "minirun run -d --name lab08-client busybox sleep 3600\n",
        ["the exercise wants 50000", "minirun update --cpus 0.5 lab08-api",
         "minirun update --pids-limit 20 lab08-api", "lab08-client is not on lab08-net",
         "network connect lab08-net lab08-client"]),
}


@pytest.mark.parametrize("clean_lab", [5, 6, 7, 8], indirect=True)
def test_half_done(clean_lab):
    n = clean_lab
    need_host(n, page_too=False)
    script, wanted = HALF_DONE[n]
    r = bash(script)
    assert r.returncode == 0, f"setting up lab {n}'s half-done exercise failed:\n{r.stdout}\n{r.stderr}"
    r = lab("check", str(n))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "check itself failed" not in r.stdout, r.stdout
    missing = [w for w in wanted if w not in r.stdout]
    assert missing == [], f"lab {n}'s check does not say {missing}:\n{r.stdout}"
    r = lab("cleanup", str(n))
    assert r.returncode == 0, r.stdout + r.stderr
    assert leftovers(n) == []
