"""Version: what minirun is (Docker's GET /version), apart from system.py so that `minirun
version` loads no engine, kernel or network code.

    version()   -> Docker's SystemVersion: Version, ApiVersion, Os, Arch, KernelVersion, Components
"""

from __future__ import annotations

import os
import sys

from ... import __version__
from ...oci.state import OCI_VERSION

API_VERSION = "1.43"  # the Docker Engine API version whose shapes these are


def version() -> dict:
    """Docker's SystemVersion (GET /version): minirun's, the runtime-spec its runtime
    implements, the kernel and Python."""
    uname = os.uname()
    return {"Version": __version__, "ApiVersion": API_VERSION, "Os": "linux",
            "Arch": uname.machine, "KernelVersion": uname.release,
            "Components": [
                {"Name": "Engine", "Version": __version__, "Details": {}},
                {"Name": "minirun-oci", "Version": __version__,
                 "Details": {"RuntimeSpec": OCI_VERSION}},
                {"Name": "Python", "Version": sys.version.split()[0], "Details": {}}]}


__all__ = ["version", "API_VERSION"]
