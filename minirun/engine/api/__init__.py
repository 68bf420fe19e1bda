"""The engine API: what a front end (the CLI, compose, the Docker API service) can ask for.

One module per verb family, as podman-py's domain/containers_*.py:

    containers.py  create, start, stop, kill, restart, remove, pause, unpause, wait, rename,
                   inspect, list, top, logs, port, prune
    exec.py        exec create, start, inspect (a process joined to a running container)
    stats.py       resource usage samples, in Docker's stats JSON shape
    images.py      image list, inspect, history, tag, remove (rmi), prune (the image store)
    distribution.py  pull, push, login, logout (registries; progress as Docker's JSON messages)
    archives.py    save, load, import (images as tar archives)
    build.py       build (a Dockerfile, streamed output), commit (a container), the build cache
    attach.py      a client's stdio joined to a container's, through its monitor; the frames
    files.py       cp (archive get/put), diff (changes) and export of a container's files
    volumes.py     volume create, list, inspect, remove, prune (Docker's /volumes)
    networks.py    network create, list, inspect, remove, prune, connect, disconnect
    system.py      info, df, prune (Docker's /info, /system/df, /system/prune)
    version.py     version (Docker's /version), apart so `minirun version` loads no engine code
    events.py      Docker's event feed: the journal (engine/events.py) with since, until, filters
    boot.py        after a reboot: restart policies applied as dockerd applies them at its start
    names.py       names only, read cheaply, for shell completion

The functions take an `Engine` (engine/lifecycle.py: where containers live), or for images the
image `Store` (image/store.py), and plain data -- a container's name or ID, flags as Docker's
Engine API names them -- and return plain data: dicts and lists as that API carries them
(inspect -> ContainerJSON, list -> rows, top -> Titles and Processes). Where Docker streams
(logs, stats) they return iterators; pull, push and build, whose work runs in worker threads
and ends in an image, take a `progress` callback that gets Docker's JSON messages one by one
(a service writes each as a line of its response). They raise the typed errors
of minirun/errors.py (NotFound, Conflict, InvalidArgument, Unsupported, Unavailable); each front
end maps them to its own answer (errors.py lists how).

This package does not import its modules: a front end imports the family it needs, so `minirun
run` loads containers.py only.
"""
