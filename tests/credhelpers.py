"""A docker-credential-<name> helper for tests: a small program speaking the helper protocol.

write_helper(dir, name) writes `dir/docker-credential-<name>`, which keeps its secrets in
`dir/<name>-store.json` and appends each call ("get SERVER", "store SERVER USER", "erase SERVER")
to `dir/<name>-calls.log`; put `dir` first on PATH. It answers like docker-credential-helpers:
a miss is exit 1 with "credentials not found in native keychain" on stdout.
"""

from __future__ import annotations

import os
from pathlib import Path

_PROGRAM = r'''#!/usr/bin/python3
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
store = os.path.join(here, NAME + "-store.json")
verb, data = sys.argv[1], sys.stdin.read()
try:
    with open(store) as f:
        kept = json.load(f)
except FileNotFoundError:
    kept = {}
def log(line):
    with open(os.path.join(here, NAME + "-calls.log"), "a") as f:
        f.write(line + "\n")
if verb == "store":
    req = json.loads(data)
    log("store %s %s" % (req["ServerURL"], req["Username"]))
    kept[req["ServerURL"]] = [req["Username"], req["Secret"]]
elif verb in ("get", "erase"):
    log("%s %s" % (verb, data))
    if data not in kept:
        print("credentials not found in native keychain")
        sys.exit(1)
    if verb == "get":
        user, secret = kept[data]
        print(json.dumps({"ServerURL": data, "Username": user, "Secret": secret}))
        sys.exit(0)
    del kept[data]
elif verb == "list":
    print(json.dumps({k: v[0] for k, v in kept.items()}))
    sys.exit(0)
else:
    print("unknown verb " + verb)
    sys.exit(1)
with open(store, "w") as f:
    json.dump(kept, f)
'''


def write_helper(directory: Path, name: str) -> Path:
    """docker-credential-<name> in `directory` (see the module docstring)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"docker-credential-{name}"
    path.write_text(_PROGRAM.replace("NAME", repr(name)))
    os.chmod(path, 0o755)
    return path


def kept(directory: Path, name: str) -> dict:
    """What the helper keeps: {ServerURL: [user, secret]}."""
    import json

    p = directory / f"{name}-store.json"
    return json.loads(p.read_text()) if p.exists() else {}


def calls(directory: Path, name: str) -> list[str]:
    p = directory / f"{name}-calls.log"
    return p.read_text().splitlines() if p.exists() else []
