"""Lab 02: namespaces (docs/labs/02-namespaces.md).

Exercise: a container lab02-shared that shares the host's network namespace (--network host)
but has its own PID and UTS namespaces, with the hostname lab02.
"""

from __future__ import annotations

from labs import container, ns, remove_containers, run, running_pid

TITLE = "namespaces: what a container shares with the host"
VERIFIED = ("lab02-shared shares the host's network namespace, and has its own PID and UTS "
            "namespaces (hostname lab02)")

HOW = "minirun run -d --name lab02-shared --network host --hostname lab02 busybox sleep 600"
SOLUTION = HOW + "\n"


def check() -> list[str]:
    pid, problems = running_pid("lab02-shared", HOW)
    if pid is None:
        return problems
    again = f"`minirun rm -f lab02-shared`, then `{HOW}`"
    host, mine = ns("self", "net"), ns(pid, "net")
    if mine != host:
        problems.append(f"lab02-shared has a network namespace of its own ({mine}; the host's is "
                        f"{host}): it must share the host's: {again}")
    if ns(pid, "pid") == ns("self", "pid"):
        problems.append(f"lab02-shared shares the host's PID namespace ({ns(pid, 'pid')}): drop "
                        f"--pid host: {again}")
    if ns(pid, "uts") == ns("self", "uts"):
        problems.append(f"lab02-shared shares the host's UTS namespace: drop --uts host, it "
                        f"needs its own to have its own hostname: {again}")
    else:
        r = run(["nsenter", "-t", str(pid), "-u", "hostname"])
        if r.stdout.strip() != "lab02":
            problems.append(f"lab02-shared's hostname is {r.stdout.strip()!r}, not 'lab02': add "
                            f"--hostname lab02: {again}")
    c = container("lab02-shared") or {}
    if (c.get("Config", {}).get("Cmd") or [""])[0] != "sleep":
        problems.append(f"lab02-shared should run sleep (it runs {c.get('Config', {}).get('Cmd')})"
                        f": {again}")
    return problems


def cleanup() -> None:
    remove_containers("lab02-")
