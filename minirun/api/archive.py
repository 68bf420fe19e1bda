"""Archive endpoints (docker cp): HEAD/GET/PUT /containers/{id}/archive."""

from __future__ import annotations
