"""`stats`: live resource usage of containers, as `docker stats` shows it.

The engine API (engine/api/stats.py) reads the cgroup and the network namespace and returns
Docker's stats JSON; this module turns two readings into CPU %, memory, I/O and PIDs columns.
"""

from __future__ import annotations

import time

import click

from ..base.units import binary_size, human_size
from . import container_group, main
from .common import containers_api as _containers_api, engine as _engine
from ..base.gotemplate import Format

STATS_HEADERS = {"ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
                 "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
                 "BlockIO": "BLOCK I/O", "PIDs": "PIDS", "Container": "CONTAINER"}
STATS_DEFAULT = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
                 "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")


def _api():
    """The engine API's stats module, imported when `stats` runs (not by every command)."""
    from ..engine.api import stats as stats_api  # lazily: every minirun command imports this

    return stats_api


def stats_row(s: dict) -> dict:
    """A reading with its pre-reading (Docker's stats JSON) as `docker stats` columns."""
    short = s["id"][:12]
    row = {"ID": short, "Container": short, "Name": s["name"].lstrip("/")}
    if s["read"].startswith("0001-") or s["preread"].startswith("0001-"):  # Docker's "never":
        # not running at one of the two readings
        return {**row, "CPUPerc": "0.00%", "MemUsage": "0B / 0B", "MemPerc": "0.00%",
                "NetIO": "0B / 0B", "BlockIO": "0B / 0B", "PIDs": "0"}
    cpu, pre = s["cpu_stats"], s["precpu_stats"]
    cpu_delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
    system_delta = max(cpu["system_cpu_usage"] - pre["system_cpu_usage"], 1)
    cpu_perc = 100.0 * cpu_delta / system_delta * cpu["online_cpus"]  # docker's formula
    mem = s["memory_stats"]
    raw = mem.get("stats", {})
    # Docker subtracts the page cache it could drop: inactive_file (v2) / total_inactive_file (v1).
    usage = max(mem.get("usage", 0) - (raw.get("total_inactive_file",
                                                raw.get("inactive_file", 0)) or 0), 0)
    limit = mem.get("limit", 0) or 1
    rd = sum(e["value"] for e in s["blkio_stats"]["io_service_bytes_recursive"]
             if e["op"] == "Read")
    wr = sum(e["value"] for e in s["blkio_stats"]["io_service_bytes_recursive"]
             if e["op"] == "Write")
    rx = sum(n["rx_bytes"] for n in s["networks"].values())
    tx = sum(n["tx_bytes"] for n in s["networks"].values())
    return {**row, "CPUPerc": f"{cpu_perc:.2f}%",
            "MemUsage": f"{binary_size(usage)} / {binary_size(limit)}",
            "MemPerc": f"{100.0 * usage / limit:.2f}%",
            "NetIO": f"{human_size(rx, 3)} / {human_size(tx, 3)}",
            "BlockIO": f"{human_size(rd, 3)} / {human_size(wr, 3)}",
            "PIDs": str(s["pids_stats"].get("current", 0))}


@main.command()
@click.option("-a", "--all", "all_", is_flag=True, help="All containers (default: running).")
@click.option("--no-stream", is_flag=True, help="One sample, then exit.")
@click.option("--format", "fmt", default="", help="json, table, or a Go template.")
@click.argument("containers", nargs=-1)
@click.pass_obj
def stats(obj, all_: bool, no_stream: bool, fmt: str, containers) -> None:
    """Live resource usage: CPU %, memory, network and block I/O, PIDs (from the cgroup)."""
    api, eng = _api(), _engine(obj)
    form = Format(fmt or STATS_DEFAULT, STATS_HEADERS, STATS_DEFAULT[6:])
    while True:
        ids = [_containers_api().inspect(eng, r)["Id"] for r in containers] if containers \
            else [r["Id"] for r in _containers_api().list_(eng, all=all_)]
        first = {cid: api.sample(eng, cid) for cid in ids}
        time.sleep(0.5)
        rows = [stats_row(api.sample(eng, cid, first[cid])) for cid in ids]
        text = form.write(rows)
        if no_stream:
            click.echo(text, nl=False)
            return
        click.echo("\033[2J\033[H" + text, nl=False)


container_group.add_command(stats, "stats")
