"""The engine: containers as Docker users know them, built on the OCI runtime below.

    api/             what a front end asks for, in plain data with typed errors (see
                     api/__init__.py: containers, exec, stats, attach, files, images, build ...)
    lifecycle.py     the Engine: create, start, stop, kill, rm, wait ... on container records
    records.py       a container's record on disk (config, host config, state), names and IDs
    bundle.py        image config + `run` flags -> an OCI bundle (config.json), Docker's defaults
    security.py      Docker's hardening for every container and the flags that change it
    seccomp_profile.py  Docker's default seccomp profile, as the OCI linux.seccomp object
    userns.py        --userns-remap and --userns=auto: subordinate ids, the container's maps
    users.py         `-u user[:group]` resolved in the image's /etc/passwd and /etc/group
    mounts.py        `-v` and `--mount` specs, parsed into Docker's Mounts entries
    volumes.py       named and anonymous volumes under <root>/volumes, seeded from the image
    networking.py    a container's place on its networks: addresses, veths, ports, names
    monitor.py       the per-container monitor: owns stdio, writes logs, records the exit, restarts
    monitorhandle.py a monitor started ahead of time, and the handle the CLI keeps on it
    early.py         `minirun run`'s monitor started before the CLI imports click
    nethelper.py     the monitor's short-lived child that plugs a container into its networks
    limits.py        resource values (-m, --cpus, ...) checked as Docker checks them
    devices.py       --device and the device cgroup: which nodes a container has and may open
    logconfig.py     --log-driver and --log-opt, as HostConfig.LogConfig
    attach.py        the framed stream between the monitor and `run`/`attach` (stdio, resize, exit)
    logs.py          json-file logs: one JSON line per chunk, like Docker's default driver
    events.py        the event journal under --root: what happened, in Docker's event shape
    health.py        HEALTHCHECK: the config, the schedule, the state machine and the probe
    files.py         cp, diff and export: walking a container's filesystem without leaving it
    builder.py       `build`: a Dockerfile, step by step, into an image (Docker's classic builder)
    build_context.py the build context and Docker's COPY rules (sources, checksums)
    commit.py        `commit`: a container's changes as a new image

Lean or standard: the monitor is a short-lived, often-started process, so what it loads
(records.py, logs.py, attach.py, health.py and the runtime) uses minirun/record.py and
minirun/fastjson.py, like minirun-oci (tests/unit/test_startup_budget.py holds it); the rest of
the engine, which runs in the CLI, uses stdlib dataclasses and json.

Data flows down: the CLI calls the engine API (api/), the engine writes bundles and calls the
OCI runtime (minirun.oci) in-process; the runtime never knows about images, names or logs.

On disk, under --root (default /var/lib/minirun), like /var/lib/docker:

  containers/<id>/container.json   the record (atomic writes, flock on containers/<id>/lock)
  containers/.names/<name>         -> <id>: the names index (records.py; the records rule)
  containers/<id>/config.json      the OCI bundle's config; the directory is the bundle
  containers/<id>/rootfs/          overlayfs: upper/ over the image's layers, while it runs
  containers/<id>/upper/, work/    the container's writable layer (kept until `rm`)
  containers/<id>/<id>-json.log    its logs
  containers/<id>/hostname, hosts, resolv.conf   bind-mounted into /etc
  volumes/<name>/_data             volume content; volumes/<name>/volume.json its record
"""
