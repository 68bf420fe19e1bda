"""Image building and moving: POST /build, /commit, /images/{name}/push, /images/get,
/images/{name}/get, /images/load."""

from __future__ import annotations
