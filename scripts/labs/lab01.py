"""Lab 01: a process, then a container process (docs/labs/01-process.md).

Exercise: a bundle in /tmp/lab01 whose container lab01-box runs `sleep` detached as PID 1 of
its own PID namespace, with the hostname lab01, and its trace saved in /tmp/lab01/trace.txt.
"""

from __future__ import annotations

import os
import re

from labs import nspid, ns, oci_state, remove_oci, remove_paths, run

TITLE = "a process, then a container process"
VERIFIED = ("lab01-box runs sleep as PID 1 of its own PID namespace, hostname lab01, from the "
            "bundle /tmp/lab01, and /tmp/lab01/trace.txt narrates its pivot_root and execve")

BUNDLE = "/tmp/lab01"
TRACE = f"{BUNDLE}/trace.txt"
HOW = ("cd /tmp/lab01 && minirun-oci --trace run -d lab01-box "
       "</dev/null >/dev/null 2>/tmp/lab01/trace.txt")

SOLUTION = r"""
scripts/build-rootfs /tmp/lab01/rootfs
cd /tmp/lab01
minirun-oci spec
python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["sleep", "600"]
c["hostname"] = "lab01"
json.dump(c, open("config.json", "w"), indent=2)
PY
minirun-oci --trace run -d lab01-box </dev/null >/dev/null 2>/tmp/lab01/trace.txt
"""


def check() -> list[str]:
    problems: list[str] = []
    if not os.path.isfile(f"{BUNDLE}/config.json"):
        problems.append(f"{BUNDLE}/config.json is missing: make the bundle with "
                        f"`scripts/build-rootfs {BUNDLE}/rootfs; cd {BUNDLE}; minirun-oci spec`")
    if not os.path.isfile(f"{BUNDLE}/rootfs/bin/busybox"):
        problems.append(f"{BUNDLE}/rootfs has no bin/busybox: run "
                        f"`scripts/build-rootfs {BUNDLE}/rootfs`")
    st = oci_state("lab01-box")
    if st is None:
        problems.append(f"there is no minirun-oci container lab01-box: start it with `{HOW}`")
    elif st.get("status") != "running":
        problems.append(f"lab01-box is {st.get('status')}, not running (did its program exit?): "
                        f"`minirun-oci delete --force lab01-box`, set \"args\" to "
                        f"[\"sleep\", \"600\"], then `{HOW}`")
        st = None
    elif os.path.realpath(st.get("bundle", "")) != BUNDLE:
        problems.append(f"lab01-box was started from {st.get('bundle')}, not {BUNDLE}: delete it "
                        f"(`minirun-oci delete --force lab01-box`) and run it from {BUNDLE}")
    if st and st.get("status") == "running":
        pid = int(st["pid"])
        ids = nspid(pid)
        if not ids or ids[-1] != 1 or ns(pid, "pid") == ns("self", "pid"):
            problems.append(f"lab01-box's process (host PID {pid}) is not PID 1 of a PID namespace "
                            f"of its own (NSpid {ids}): keep \"pid\" in linux.namespaces")
        try:
            argv0 = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0].decode()
        except OSError:
            argv0 = "?"
        if os.path.basename(argv0) != "sleep":
            problems.append(f"lab01-box runs {argv0!r}, not sleep: set process.args to "
                            f"[\"sleep\", \"600\"] in {BUNDLE}/config.json and start it again")
        r = run(["nsenter", "-t", str(pid), "-u", "hostname"])
        name = r.stdout.strip()
        if r.returncode != 0:
            problems.append(f"cannot read lab01-box's hostname with nsenter ({r.stderr.strip()})")
        elif name != "lab01":
            problems.append(f"lab01-box's hostname is {name!r}, not 'lab01': set \"hostname\": "
                            f"\"lab01\" in {BUNDLE}/config.json, then delete and start it again")
    if not os.path.isfile(TRACE):
        problems.append(f"{TRACE} is missing: start lab01-box with --trace and stderr to that file "
                        f"(`{HOW}`)")
    else:
        text = open(TRACE, errors="replace").read()
        if not re.search(r"^\[init 1 [^]]*\] pivot_root\(", text, re.M):
            problems.append(f"{TRACE} has no `[init 1 ...] pivot_root(` line: it must be the "
                            f"stderr of `minirun-oci --trace run ...` (--trace before `run`)")
        if not re.search(r"^\[init 1 [^]]*\] execve\(\"[^\"]*sleep\"", text, re.M):
            problems.append(f"{TRACE} has no `[init 1 ...] execve(\".../sleep\"` line: trace the "
                            f"run of lab01-box itself, not another container")
    return problems


def cleanup() -> None:
    remove_oci("lab01-")
    remove_paths(BUNDLE)
