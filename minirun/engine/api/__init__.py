"""The engine API: what a front end (the CLI, compose, the Docker API service) can ask for.

One module per verb family, as podman-py's domain/containers_*.py:

    containers.py  create, start, stop, kill, restart, remove, pause, unpause, wait, rename,
                   inspect, list, top, logs, port, prune
    exec.py        exec create, start, inspect (a process joined to a running container)
    stats.py       resource usage samples, in Docker's stats JSON shape

The functions take an `Engine` (engine/lifecycle.py: where containers live) and plain data -- a
container's name or ID, flags as Docker's Engine API names them -- and return plain data: dicts
and lists as that API carries them (inspect -> ContainerJSON, list -> rows, top -> Titles and
Processes). Where Docker streams (logs, stats) they return iterators. They raise the typed errors
of minirun/errors.py (NotFound, Conflict, InvalidArgument, Unsupported, Unavailable); each front
end maps them to its own answer (errors.py lists how).

This package does not import its modules: a front end imports the family it needs, so `minirun
run` loads containers.py only.
"""
