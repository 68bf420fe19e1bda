"""Lab 06: images: layers, the build cache, history and save.

The exercise (docs/labs/06-images.md): in /tmp/lab06, a Dockerfile FROM busybox with a COPY and
a RUN (each makes a layer), a LABEL lab=06 (a metadata step: no layer) and a CMD that prints
a line containing "lab06"; build it as `lab06-app:1`; save it to /tmp/lab06/app.tar.

check() reads the image back: two layers more than busybox's, a COPY and a RUN in its history,
what its CMD prints, and the archive's manifest.json against the image (config = image ID,
one layer tar per layer, in order).
"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import labs as L  # noqa: E402  (the shared helpers: scripts/labs/__init__.py)

TITLE = "images: layers, the build cache, history and save"
VERIFIED = "lab06-app:1 has busybox's layer + 2 of its own, its CMD says lab06, app.tar matches it"

IMAGE = "lab06-app:1"
DIR = "/tmp/lab06"
TAR = f"{DIR}/app.tar"
BUILD = f"cd {DIR} && minirun build -t {IMAGE} ."

SOLUTION = f"""
mkdir -p {DIR}
cd {DIR}
echo 'hello from lab06' > message.txt
cat > Dockerfile <<'EOF'
FROM busybox
COPY message.txt /message.txt
RUN wc -c < /message.txt > /message.size
LABEL lab=06
CMD ["cat", "/message.txt"]
EOF
minirun build -t {IMAGE} .
minirun build -t {IMAGE} .
minirun save -o {TAR} {IMAGE}
"""


def image(name: str) -> dict | None:
    return L.inspected("image", "inspect", name)


def history(name: str) -> list[str]:
    r = L.minirun("history", "--no-trunc", "--format", "{{.CreatedBy}}", name)
    return r.stdout.splitlines() if r.returncode == 0 else []


def check_image(img: dict, base: dict) -> list[str]:
    problems = []
    layers = img.get("RootFS", {}).get("Layers", [])
    base_layers = base.get("RootFS", {}).get("Layers", [])
    if layers[:len(base_layers)] != base_layers:
        problems.append(f"{IMAGE} is not built on busybox (its first layers are not busybox's "
                        f"{[x[7:19] for x in base_layers]}): start the Dockerfile with "
                        "`FROM busybox` and rebuild with `" + BUILD + "`")
    own = len(layers) - len(base_layers)
    if own < 2:
        problems.append(f"{IMAGE} has {own} layer(s) of its own, the exercise wants 2: only the "
                        "filesystem steps (COPY, ADD, RUN) make layers. Put one COPY and one RUN "
                        "in the Dockerfile and rebuild with `" + BUILD + "`")
    labels = (img.get("Config") or {}).get("Labels") or {}
    if labels.get("lab") != "06":
        problems.append(f"{IMAGE} has no label lab=06 (its labels: {labels}): add `LABEL lab=06` "
                        "to the Dockerfile (a metadata step: a history line, no layer) and rebuild")
    steps = history(IMAGE)
    if not any("COPY" in s for s in steps):
        problems.append(f"`minirun history {IMAGE}` shows no COPY step: add "
                        "`COPY message.txt /message.txt` (a file of the build context) and rebuild")
    if not any("#(nop)" not in s and s.startswith("/bin/sh -c") for s in steps):
        problems.append(f"`minirun history {IMAGE}` shows no RUN step (a `/bin/sh -c ...` line "
                        "without #(nop)): add a RUN that writes a file, e.g. "
                        "`RUN wc -c < /message.txt > /message.size`, and rebuild")
    r = L.minirun("run", "--rm", "--network", "none", IMAGE, timeout=60)
    if r.returncode != 0 or "lab06" not in r.stdout:
        said = (r.stdout + r.stderr).strip().splitlines()
        problems.append(f"`minirun run --rm {IMAGE}` should print a line containing 'lab06' "
                        f"(exit {r.returncode}, printed {said[:2]!r}): give the image a CMD that "
                        "does, e.g. COPY a message.txt saying 'hello from lab06' and "
                        "`CMD [\"cat\", \"/message.txt\"]`, and rebuild")
    return problems


def check_tar(img: dict) -> list[str]:
    save = f"`minirun save -o {TAR} {IMAGE}`"
    try:
        with tarfile.open(TAR) as t:
            members = set(t.getnames())
            f = t.extractfile("manifest.json") if "manifest.json" in members else None
            manifest = json.load(f) if f else None
    except (OSError, tarfile.TarError, ValueError) as e:
        return [f"cannot read {TAR} as a tar archive ({e}): make it with {save}"]
    if not manifest:
        return [f"{TAR} has no manifest.json at its top: it is not a docker-archive; "
                f"make it with {save} (the default format)"]
    entry = next((m for m in manifest if IMAGE in (m.get("RepoTags") or [])), None)
    if entry is None:
        return [f"{TAR}'s manifest.json names no image tagged {IMAGE} "
                f"(RepoTags: {[m.get('RepoTags') for m in manifest]}): save that tag, {save}"]
    problems = []
    want_cfg = img["Id"].split(":", 1)[1] + ".json"
    if entry.get("Config") != want_cfg:
        problems.append(f"{TAR} holds another build of {IMAGE} (config {entry.get('Config')}, "
                        f"the image's ID is {img['Id'][7:19]}): save it again after the last "
                        f"build, {save}")
    layers = img.get("RootFS", {}).get("Layers", [])
    if len(entry.get("Layers", [])) != len(layers):
        problems.append(f"{TAR} lists {len(entry.get('Layers', []))} layer tars, {IMAGE} has "
                        f"{len(layers)} layers: save it again, {save}")
    missing = [x for x in entry.get("Layers", []) if x not in members]
    if missing:
        problems.append(f"{TAR}'s manifest.json names layer tars it does not hold ({missing}): "
                        f"save it again, {save}")
    return problems


def check() -> list[str]:
    base = image("busybox:latest")
    if base is None:
        return ["there is no busybox:latest image to build FROM: load it "
                "(scripts/build-image /tmp/img && minirun load -i /tmp/img)"]
    img = image(IMAGE)
    if img is None:
        return [f"there is no image {IMAGE}: write {DIR}/Dockerfile (FROM busybox, a COPY, a RUN, "
                f"a CMD) and build it with `{BUILD}`"]
    return check_image(img, base) + check_tar(img)


def _lab06_dangling() -> list[str]:
    """IDs of untagged images labelled lab=06 (older builds of the exercise)."""
    r = L.minirun("images", "-q", "--no-trunc", "--filter", "dangling=true",
                  "--filter", "label=lab=06")
    return r.stdout.split()


def cleanup() -> None:
    L.remove_containers("lab06-")
    r = L.minirun("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference=lab06-*")
    tags = [t for t in r.stdout.split() if t.startswith("lab06-")]
    gone = tags + _lab06_dangling()
    if gone:
        L.minirun("rmi", "-f", *gone, timeout=60)
    # the build cache names the layers of every step, so they stay until it is forgotten
    # (it is a cache: forgetting other builds' entries only makes their next build slower)
    L.minirun("builder", "prune", "-f", timeout=60)
    L.remove_paths(DIR)
