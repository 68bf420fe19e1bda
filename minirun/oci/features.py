"""`minirun-oci features`: what this runtime supports (runtime-spec features.md)."""

from __future__ import annotations

from .. import __version__
from ..kernel import capabilities, cgroups, rootfs, seccomp
from ..kernel.cgroups import LAYOUT_WHY
from ..kernel.namespaces import TYPES
from .spec import HOOK_NAMES
from .state import OCI_VERSION


def features() -> dict[str, object]:
    layout = cgroups.layout()
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOK_NAMES),
        "mountOptions": sorted(set(rootfs.FLAGS) | set(rootfs.PROPAGATION) | set(rootfs.RECURSIVE)),
        "linux": {
            "namespaces": sorted(TYPES),
            "capabilities": sorted(capabilities.NAMES, key=capabilities.NAMES.get),
            "cgroup": {"v1": layout in ("v1", "hybrid"), "v2": layout in ("v2", "hybrid"),
                       "systemd": False, "systemdUser": False, "rdma": False},
            "seccomp": {
                "enabled": True,
                "actions": sorted(seccomp.ACTIONS),
                "operators": list(seccomp.OPS),
                "archs": sorted(a for a, v in seccomp.ARCHES.items() if v is not None),
                "knownFlags": sorted(seccomp.FLAGS),
                "supportedFlags": sorted(seccomp.FLAGS),
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
        },
        "annotations": {
            "org.minirun.version": __version__,
            "org.minirun.cgroup.layout": layout,
            "org.minirun.cgroup.layout.why": LAYOUT_WHY.get(layout, ""),
            # runc names its libseccomp version here; our filters come from kernel/seccomp.py.
            "org.minirun.seccomp.compiler": "minirun's own classic-BPF compiler (no libseccomp)",
        },
    }
