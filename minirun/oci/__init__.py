"""The OCI runtime: runc-compatible commands on top of minirun.kernel.

spec.py (config.json), state.py (state on disk), container.py (the lifecycle verbs),
init.py (what runs inside the new namespaces), hooks.py, cli.py (argv -> verbs).
"""
