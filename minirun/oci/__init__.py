"""The OCI runtime: runc-compatible commands on top of minirun.kernel.

    quick.py             the plain case of state, start, kill and delete without `os` (the
                         launcher's first try; anything else falls through to cli.py)
    cli.py               argv -> verbs: runc's flags, parsed by hand (minirun-oci's entry point)
    spec.py              config.json as records, with defaults and validation
    state.py             state on disk: <root>/<id>/state.json, liveness by pid + start time
    container.py         the lifecycle verbs: create, start, state, kill, delete, list, ps
    init.py              what runs in the new namespaces: the child, then the init (PID 1)
    channel.py           every message between the runtime, the child and the init
    execute.py           exec: a process joining a running container
    run.py               run: create + start + wait + delete, as a subreaper
    control.py           the cgroup verbs: pause, resume, update, events
    hooks.py             OCI hooks: running them at the lifecycle's fixed points
    seccomp_listener.py  SCMP_ACT_NOTIFY: the listener fd handed to a supervisor
    features.py          `features`: what this runtime supports, as JSON
    log.py               the runtime's own log lines (--log, --log-format, --debug)

Every verb is a short-lived process racing runc, so this package keeps a start-up budget
(tests/unit/test_startup_budget.py): records are `minirun.record`'s `@dataclass` and JSON is
`minirun.fastjson`, never the standard `dataclasses` or `json`; no `typing`, `re`, `enum`,
`signal` (`_signal` instead), `subprocess` or `socket` on a lean path. Imports are at the
top of each file, except the few a verb must not pay for, each with a comment saying so.
"""
