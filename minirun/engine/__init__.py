"""The engine: containers as Docker users know them, built on the OCI runtime below.

    records.py    a container's record on disk (config, host config, state), names and IDs
    bundle.py     image config + `run` flags -> an OCI bundle (config.json), Docker's defaults
    users.py      `-u user[:group]` resolved in the image's /etc/passwd and /etc/group
    volumes.py    named and anonymous volumes under <root>/volumes, seeded from the image
    monitor.py    the per-container monitor: owns stdio, writes logs, records the exit, restarts
    attach.py     the framed stream between the monitor and `run`/`attach` (stdio, resize, exit)
    logs.py       json-file logs: one JSON line per chunk, like Docker's default driver
    lifecycle.py  the Engine: create, start, stop, kill, rm, wait ... on container records
    api/          what a front end asks for, in plain data with typed errors (containers, exec,
                  stats: see api/__init__.py)
    files.py      cp, diff and export: walking a container's filesystem without leaving it

Data flows down: the CLI calls the engine API (api/), the engine writes bundles and calls the
OCI runtime (minirun.oci) in-process; the runtime never knows about images, names or logs.

On disk, under --root (default /var/lib/minirun), like /var/lib/docker:

  containers/<id>/container.json   the record (atomic writes, flock on containers/<id>/lock)
  containers/<id>/config.json      the OCI bundle's config; the directory is the bundle
  containers/<id>/rootfs/          overlayfs: upper/ over the image's layers, while it runs
  containers/<id>/upper/, work/    the container's writable layer (kept until `rm`)
  containers/<id>/<id>-json.log    its logs
  containers/<id>/hostname, hosts, resolv.conf   bind-mounted into /etc
  volumes/<name>/_data             volume content; volumes/<name>/volume.json its record
"""
