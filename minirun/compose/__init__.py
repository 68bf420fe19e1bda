"""`minirun compose`: Docker Compose v2 files loaded into one canonical model.

    loader.py       find the files, read YAML, merge, interpolate, normalise, validate:
                    load() -> Project; dump() (`compose config`), config_hash(), service_order()
    interpolate.py  ${VAR}, ${VAR:-default}, ${VAR:?error}, $$ ... in the values of a file
    envfile.py      .env, --env-file and a service's env_file: KEY=VAL, quotes, export, comments
    merge.py        several -f files merged with Compose's override rules

The model is what `docker compose config --format json` prints; the engine side works from it.
"""
