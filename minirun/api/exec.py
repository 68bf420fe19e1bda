"""Exec endpoints: POST /containers/{id}/exec, /exec/{id}/start (hijacked), /resize, /json."""

from __future__ import annotations
