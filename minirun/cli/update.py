"""update: change the limits (and restart policy) of containers, running or not.

Docker's `docker update`: the flags become an UpdateConfig, sent to each container in turn
(engine/api/containers.py update); a running or paused container's cgroup files change at
once, a stopped one keeps the values for its next start. Each name is printed as it was given
once its update worked; failures are printed at the end and the exit status is 1, as Docker's
CLI does. Values are parsed as `run` parses them (engine/limits.py), and checked as Docker's
daemon checks them.
"""

from __future__ import annotations

import click

from ..errors import InvalidArgument
from . import container_group, main
from .containers import _api, _each, _engine


def _config(kw: dict) -> dict:
    """The flags given (None: not given) as Docker's UpdateConfig."""
    from ..engine import limits  # lazily: start-up (cli/containers.py _api)

    out: dict = {}
    if kw["cpus"] is not None:
        try:
            out["NanoCpus"] = round(float(kw["cpus"]) * 1e9)
        except ValueError:
            raise InvalidArgument(f"invalid argument \"{kw['cpus']}\" for \"--cpus\" flag: "
                                  f"failed to parse {kw['cpus']} as a rational number") from None
        if out["NanoCpus"] <= 0:
            n = limits.Host.probe().num_cpus
            raise InvalidArgument(f"Range of CPUs is from 0.01 to {n}.00, as there are only "
                                  f"{n} CPUs available")
    for flag, key in (("memory", "Memory"), ("memory_reservation", "MemoryReservation")):
        if kw[flag] is not None:
            out[key] = limits.size(kw[flag], "--" + flag.replace("_", "-"))
    if kw["memory_swap"] is not None:
        out["MemorySwap"] = limits.size(kw["memory_swap"], "--memory-swap", swap=True)
    for flag, key in (("cpu_shares", "CpuShares"), ("cpu_quota", "CpuQuota"),
                      ("cpu_period", "CpuPeriod"), ("blkio_weight", "BlkioWeight"),
                      ("cpuset_cpus", "CpusetCpus"), ("cpuset_mems", "CpusetMems")):
        if kw[flag] is not None:
            out[key] = kw[flag]
    if kw["pids_limit"] is not None:
        out["PidsLimit"] = kw["pids_limit"] if kw["pids_limit"] > 0 else -1  # 0, -1: unlimited
    if kw["restart"] is not None:
        name, _, count = kw["restart"].partition(":")
        out["RestartPolicy"] = {"Name": name, "MaximumRetryCount": int(count) if
                                count.isdigit() else (count or 0)}
    return out


@main.command()
@click.option("--blkio-weight", type=int, default=None, help="Block IO (relative weight), "
              "between 10 and 1000, or 0 to disable.")
@click.option("--cpu-period", type=int, default=None, help="Limit CPU CFS period (µs).")
@click.option("--cpu-quota", type=int, default=None, help="Limit CPU CFS quota (µs).")
@click.option("-c", "--cpu-shares", type=int, default=None, help="CPU shares (relative weight).")
@click.option("--cpus", default=None, help="Number of CPUs.")
@click.option("--cpuset-cpus", default=None, help="CPUs in which to allow execution (0-3, 0,1).")
@click.option("--cpuset-mems", default=None, help="MEMs in which to allow execution (0-3, 0,1).")
@click.option("-m", "--memory", default=None, help="Memory limit.")
@click.option("--memory-reservation", default=None, help="Memory soft limit.")
@click.option("--memory-swap", default=None, help="Swap limit equal to memory plus swap: -1 to "
              "enable unlimited swap.")
@click.option("--pids-limit", type=int, default=None, help="Tune container pids limit (set -1 "
              "for unlimited).")
@click.option("--restart", default=None, help="Restart policy to apply when a container exits.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def update(obj, containers, **kw) -> None:
    """Update configuration of one or more containers."""
    config = _config(kw)
    if not config:
        raise InvalidArgument("you must provide one or more flags when using this command")
    api, eng = _api(), _engine(obj)
    warnings: list[str] = []

    def one(ref: str) -> str:
        warnings.extend(api.update(eng, ref, config).get("Warnings") or [])
        return ref

    try:
        _each(containers, one)
    finally:
        if warnings:  # the docker CLI prints them after the names, on stdout
            click.echo("\n".join(dict.fromkeys(warnings)))


container_group.add_command(update, "update")
