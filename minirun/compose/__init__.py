"""`minirun compose`: Docker Compose v2, a front end over the same engine API as `minirun`.

The file side (no engine, no root):

    loader.py       find the files, the environment and the name; then each file read,
                    interpolated and normalised, all merged, finished and checked: load() ->
                    Project; dump() (`compose config`), config_hash(), service_order()
    yamlfile.py     YAML as Compose reads it, with the line of every key (for errors)
    normalise.py    one file's model in canonical form, each key checked against the schema
    interpolate.py  ${VAR}, ${VAR:-default}, ${VAR:?error}, $$ ... in the values of a file
    envfile.py      .env, --env-file and a service's env_file: KEY=VAL, quotes, export, comments
    merge.py        several -f files merged with Compose's override rules

The engine side:

    naming.py       Compose's names and labels (<project>-<service>-<n>, com.docker.compose.*)
    convert.py      a service -> the RunOptions of one of its containers; unsupported keys refused
    project.py      up (networks, volumes, images, containers in depends_on order), down, and
                    the verbs between, all through minirun/engine/api
    logs.py         several containers' output on one screen, `name  | line`
    cli.py          the `minirun compose` commands: parse, call project.py, print

The model is what `docker compose config --format json` prints; the engine side works from it.
docs/compose.md walks through one project from file to containers.
"""
