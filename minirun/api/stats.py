"""GET /containers/{id}/stats: Docker's stats JSON, streamed (or once with stream=false)."""

from __future__ import annotations
