"""minirun: a container runtime in readable Python.

Layers (see docs/architecture.md): the docker-like front end (`minirun`), the OCI runtime
(`minirun-oci`, package `minirun.oci`) and the kernel layer (`minirun.kernel`), where every
system call goes through one seam, `minirun.kernel.libc`, that `--trace` narrates.
"""

__version__ = "0.1.0"
