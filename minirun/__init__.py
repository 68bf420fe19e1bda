"""minirun: a container runtime in readable Python.

Layers (see docs/architecture.md): the docker-like front end (`minirun`), the OCI runtime
(`minirun-oci`, package `minirun.oci`) and the kernel layer (`minirun.kernel`), where every
system call goes through one seam, `minirun.kernel.libc`, that `--trace` narrates.

    cli/          the docker-like CLI (click): parses and renders, calls the engine API
    compose/      `minirun compose`: Compose files -> projects of containers, on the engine API
    api/          `minirun system service`: the Docker Engine API on a socket, on the engine API
    engine/       containers as Docker users know them; engine/api/ is what front ends ask for
    image/        references, registries, the content store, layers, overlays, Dockerfiles
    network/      Docker's bridge driver in pieces: records, bridges, NAT, DNS
    oci/          `minirun-oci`: the runc-compatible OCI runtime
    kernel/       one small module per kernel concept, every system call through libc.py
    base/         what every layer may use: atomic writes, locks, times, names, tables
    errors.py     one exception family, typed (NotFound, Conflict, ...), one line each
    trace.py      --trace: each kernel step, its arguments and why, as it happens
    record.py     `@dataclass` for the short-lived processes (no `dataclasses` import)
    fastjson.py   JSON without `import json`, for the same processes
"""

__version__ = "0.1.0"
