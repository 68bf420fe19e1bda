"""`minirun system service`: the Docker Engine API, so Docker's own clients drive minirun.

    server.py      the socket (unix, loopback TCP, systemd's), threads, idle exit, SIGTERM
    wire.py        HTTP as the API uses it: Request, JSON responses, streams, hijacking
    routes.py      the route table and version prefixes (/v1.24 ... /v1.43); 501 for Swarm
    translate.py   a container create body (Config, HostConfig, NetworkingConfig) -> RunOptions
    streams.py     work in a thread whose messages go out as a JSON stream (pull progress)
    system.py      /_ping, /version, /info, /system/df, /auth, /events
    containers.py  /containers: list, create, inspect, start ... wait, logs, top, export
    attach.py      /containers/{id}/attach: hijacked, joined to the container's stdio
    exec.py        /containers/{id}/exec, /exec/{id}/start (hijacked), resize, json
    archive.py     /containers/{id}/archive: docker cp both ways
    stats.py       /containers/{id}/stats
    build.py       /build, /commit, /images/{name}/push, save (get) and load
    images.py      /images: list, inspect, history, tag, remove, prune, create (pull)
    networks.py    /networks
    volumes.py     /volumes

Each endpoint calls the engine API (minirun/engine/api) as the CLI does, and maps its typed
errors to Docker's status codes (wire.STATUS). docs/api.md says how to use it.
"""
