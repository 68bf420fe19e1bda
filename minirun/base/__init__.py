"""The base layer: what every layer above may use, importing nothing of minirun's but itself.

Small modules, one concept each; none imports json, re, dataclasses or typing at its top, so
minirun-oci's verbs and the monitor can use them on their lean start path. (gotemplate.py does:
only the front ends, which render --format, load it.)

    atomicfile.py       atomic file writes (temp file, fsync, rename), errors naming the file
    bundle_defaults.py  the init annotation and default mounts the engine and the runtime share
    durations.py        Go durations: time.ParseDuration and Duration.String ("1m30s", "500ms")
    filelock.py         flock(2) on a lock file or a directory, as a `with` block
    gotemplate.py       Go's text/template subset behind --format and inspect -f, and tables
    mediatypes.py       OCI and Docker media types of manifests, indexes, configs and layers
    names.py            container, volume and network names; runtime IDs; hex IDs
    times.py            RFC 3339 times as Docker prints them: now, format, parse
    units.py            go-units: human sizes and durations (docker images, ps, stats)
    tree.py             rm -rf of a directory tree by fds, without shutil
    detachkeys.py       --detach-keys: Docker's key sequence that detaches a terminal
    table.py            the docker CLI's default tables, without the template engine
"""
