"""Platforms: which image of an index (a manifest list) this host runs, as Docker picks it.

    host_platform()                  -> ("linux", "arm64", "v8"): os.uname() as indexes spell it
    parse_platform("linux/arm/v7")   -> ("linux", "arm", "v7"): the form of --platform
    platform_string(descriptor_platform) -> "linux/arm/v7"
    select_platform(index_json, os, arch, variant) -> the index entry to pull, load or run

Used by pull (registry indexes), load (OCI layout indexes), import and the image assembler
(the platform of an image made here).
"""

from __future__ import annotations

import os

from ..errors import RegistryError

# os.uname().machine -> (GOARCH, variant), the names image indexes use.
_MACHINES = {
    "x86_64": ("amd64", ""), "amd64": ("amd64", ""), "i386": ("386", ""), "i686": ("386", ""),
    "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"), "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"), "armv5tel": ("arm", "v5"), "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""), "riscv64": ("riscv64", ""), "mips64": ("mips64le", ""),
    "loongarch64": ("loong64", ""),
}


def host_platform() -> tuple[str, str, str]:
    """(os, architecture, variant) of this machine as indexes spell it: ("linux", "arm64", "v8")."""
    machine = os.uname().machine
    arch, variant = _MACHINES.get(machine, (machine, ""))
    return "linux", arch, variant


def parse_platform(text: str) -> tuple[str, str, str]:
    """"linux/arm64/v8" -> ("linux", "arm64", "v8"); the form of --platform."""
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise RegistryError(f"invalid platform {text!r}: expected OS/ARCH[/VARIANT] (linux/arm64)")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


def _variant(arch: str, variant: str) -> str:
    # arm64 means v8 and 32-bit arm defaults to v7, whether or not the index says so.
    if not variant:
        return {"arm64": "v8", "arm": "v7"}.get(arch, "")
    return variant


def platform_string(platform: dict) -> str:
    s = f"{platform.get('os', '?')}/{platform.get('architecture', '?')}"
    return s + (f"/{platform['variant']}" if platform.get("variant") else "")


def select_platform(index_json: dict, os: str | None = None, arch: str | None = None,
                    variant: str | None = None, *, what: str = "") -> dict:
    """The descriptor in an index or manifest list for os/arch/variant (default: this host).

    A variant asked for (or the host's, when arch is the host's) must match; with arch given and
    no variant, any variant does, an entry without one first.
    """
    host_os, host_arch, host_variant = host_platform()
    want_os, want_arch = os or host_os, arch or host_arch
    if variant is None and arch is None:
        variant = host_variant
    entries = [m for m in index_json.get("manifests") or [] if isinstance(m, dict)
               and isinstance(m.get("platform"), dict) and m["platform"].get("os") != "unknown"]
    same = [m for m in entries if (m["platform"].get("os"), m["platform"].get("architecture"))
            == (want_os, want_arch)]
    if variant:
        want_variant = _variant(want_arch, variant)
        same = [m for m in same
                if _variant(want_arch, m["platform"].get("variant", "")) == want_variant]
    else:
        same.sort(key=lambda m: bool(m["platform"].get("variant")))
    if same:
        return same[0]
    want = f"{want_os}/{want_arch}" + (f"/{variant}" if variant else "")
    available = ", ".join(platform_string(m["platform"]) for m in entries) or "none"
    prefix = f"{what}: " if what else ""
    raise RegistryError(f"{prefix}no image for platform {want} (available: {available})")


def host_platform_string() -> str:
    """"linux/amd64", "linux/arm64/v8": this host's platform, as --platform spells it."""
    os_, arch, variant = host_platform()
    return f"{os_}/{arch}" + (f"/{variant}" if variant else "")
