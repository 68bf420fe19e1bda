"""libseccomp as the oracle of the seccomp tests: its filter for a context, as classic BPF."""

from __future__ import annotations

import os


def export_bpf(lib, ctx) -> bytes:
    """seccomp_export_bpf(ctx) through a pipe: the program libseccomp would load."""
    r, w = os.pipe()
    try:
        assert lib.seccomp_export_bpf(ctx, w) == 0
        os.close(w)
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
    finally:
        os.close(r)
    return data
