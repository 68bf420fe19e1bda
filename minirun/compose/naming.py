"""How Compose names and labels what it makes, so that `ps`, `down` and a second `up` find it.

    container   <project>-<service>-<n>   (or the service's container_name; one-off runs:
                <project>-<service>-run-<12 hex>)
    network     <project>_<key>           (the model's networks.<key>.name)
    volume      <project>_<key>           (the model's volumes.<key>.name)

Every object carries com.docker.compose.project; containers also the service, their number,
the hash of the service's configuration (a second `up` recreates what changed) and whether
they are one-off (`compose run`). These are Docker Compose's own label names: a project that
docker compose made is one minirun compose can list, and the other way round.
"""

from __future__ import annotations

import secrets

PREFIX = "com.docker.compose."
PROJECT = PREFIX + "project"
SERVICE = PREFIX + "service"
NUMBER = PREFIX + "container-number"
CONFIG_HASH = PREFIX + "config-hash"
ONEOFF = PREFIX + "oneoff"
WORKING_DIR = PREFIX + "project.working_dir"
CONFIG_FILES = PREFIX + "project.config_files"
IMAGE = PREFIX + "image"  # the image ID a container was made from: a new one means recreate
DEPENDS_ON = PREFIX + "depends_on"
NETWORK = PREFIX + "network"
VOLUME = PREFIX + "volume"
VERSION = PREFIX + "version"
COMPOSE_VERSION = "2.29.0"  # the Compose release whose behaviour this follows


def container_name(project: str, service: str, number: int) -> str:
    return f"{project}-{service}-{number}"


def oneoff_name(project: str, service: str) -> str:
    return f"{project}-{service}-run-{secrets.token_hex(6)}"


def image_name(project: str, service: str) -> str:
    """The name `build:` gives an image when the service names none (Compose v2)."""
    return f"{project}-{service}"


def project_filter(project: str, service: str | None = None, oneoff: bool | None = False) -> dict:
    """The label filter (Docker's `filters` shape) for a project's containers."""
    labels = [f"{PROJECT}={project}"]
    if service is not None:
        labels.append(f"{SERVICE}={service}")
    if oneoff is not None:
        labels.append(f"{ONEOFF}={'True' if oneoff else 'False'}")
    return {"label": labels}
