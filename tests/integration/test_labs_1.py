"""Labs 01-04 (docs/labs/): the pages cannot rot and the checks tell done from not done.

For each lab: (a) the page's ```sh blocks run, as one bash -e script, as an attendee would;
(b) `scripts/lab check N` fails with a useful line before the exercise; (c) the lab's SOLUTION
runs; (d) the check passes; (e) cleanup leaves no labNN-* container, no mount and no
/tmp/labNN* path. They use the default root (/var/lib/minirun) and its busybox image, as the
attendees do; every name they make starts with labNN, so they never touch anything else.
"""

from __future__ import annotations

import glob
import os

import pytest

from labrunner import bash, cleaned, lab, labs, page
from labrunner import module as _module

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="the labs make containers: they need root")


def leftovers(n: int, ids: tuple[str, ...] = ()) -> list[str]:
    """What lab n made and may have left: containers (front end and OCI), mounts (by lab name,
    or by the IDs of the containers it made), /tmp/labNN* paths."""
    prefix = f"lab{n:02d}"
    found = [f"container {c}" for c in labs.names(prefix)]
    found += [f"oci container {c}" for c in labs.oci_ids(prefix)]
    marks = (prefix, *ids)
    found += [f"mount {m['point']}" for m in labs.mountinfo("self")
              if any(k in m["point"] or any(k in o for o in m["super"]) for k in marks)]
    found += [f"path {p}" for p in glob.glob(f"/tmp/{prefix}*")]
    return found


@pytest.fixture
def clean_lab(request):
    yield from cleaned(request.param, leftovers)


@pytest.mark.parametrize("clean_lab", [1, 2, 3, 4], indirect=True)
def test_lab(clean_lab):
    n = clean_lab
    mod = _module(n)
    assert mod.TITLE and mod.SOLUTION.strip()

    # (a) the page's runnable blocks, as an attendee would run them
    script = labs.page_script(page(n))
    assert script.strip(), f"{page(n)} has no ```sh block"
    r = bash(script)
    assert r.returncode == 0, f"{page(n)}'s sh blocks failed:\n{r.stdout}\n{r.stderr}"
    assert leftovers(n) == [], f"{page(n)}'s sh blocks left this behind"

    # (b) not done yet: exit 1, every line names the lab and says something useful
    r = lab("check", str(n))
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines and all(ln.startswith(f"lab {n}: ") for ln in lines), r.stdout
    assert all(len(ln) > 40 and "check itself failed" not in ln for ln in lines), r.stdout
    assert "ok" not in lines[0].split(":", 1)[1][:4]

    # (c) the exercise, done by its solution (which `lab solution` prints)
    r = lab("solution", f"{n:02d}")
    assert r.returncode == 0 and r.stdout.strip() == mod.SOLUTION.strip()
    r = bash(mod.SOLUTION)
    assert r.returncode == 0, f"lab {n}'s SOLUTION failed:\n{r.stdout}\n{r.stderr}"
    ids = tuple((labs.container(c) or {}).get("Id", c) for c in labs.names(f"lab{n:02d}"))

    # (d) done: exit 0, one ok line
    r = lab("check", f"{n:02d}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"lab {n}: ok — "), r.stdout

    # (e) cleanup leaves nothing, and the check fails again
    r = lab("cleanup", str(n))
    assert r.returncode == 0, r.stdout + r.stderr
    assert leftovers(n, ids) == []
    assert lab("check", str(n)).returncode == 1


def test_cli():
    r = lab("list")
    assert r.returncode == 0
    assert len(r.stdout.splitlines()) == 9 and "docs/labs/01-process.md" in r.stdout
    for bad in ("0", "10", "x"):
        r = lab("check", bad)
        assert r.returncode == 2 and "no lab" in r.stderr
    assert lab().returncode == 2
