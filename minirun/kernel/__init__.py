"""The kernel layer: one small module per kernel concept.

Every system call these modules make goes through `libc`, the single ctypes seam that
`--trace` narrates and that unit tests replace with a recorder (`libc.install(Recorder())`).
"""
