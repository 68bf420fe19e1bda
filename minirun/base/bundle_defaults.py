"""What both writers of a config.json put in it: the engine (engine/bundle.py, for `minirun
run`) and the runtime (oci/spec.py, for `minirun-oci spec`), and what the runtime reads back.

  INIT_ANNOTATION   "true": PID 1 is minirun's reaper running the program (`run --init`),
                    written by the engine, acted on by the runtime's init (oci/init.py)
  default_mounts    /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys, /sys/fs/cgroup, as
                    runc spec and Docker both mount them
  READONLY_PATHS    the /proc entries bound read-only (runc's and Docker's list alike)

The masked paths differ (Docker masks more than runc spec does), so each writer keeps its own.
Plain data, no imports: the runtime's create path reads the annotation.
"""

from __future__ import annotations

INIT_ANNOTATION = "run.minirun.init"

READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def default_mounts(*, proc_options: tuple[str, ...] = (), sys_readonly: bool = True
                   ) -> list[dict]:
    """The standard mounts of a container, new dicts each call (callers change them).

    proc_options: Docker mounts /proc nosuid,noexec,nodev; runc spec writes no options.
    sys_readonly: /sys is read-only except for a privileged container (Docker's rule).
    """
    proc: dict = {"destination": "/proc", "type": "proc", "source": "proc"}
    if proc_options:
        proc["options"] = list(proc_options)
    return [
        proc,
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        # gid=5: the tty group, so that a program's terminal is group-writable as on a host.
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev"] + (["ro"] if sys_readonly else [])},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ]
