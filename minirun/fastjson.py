"""JSON without `import json`.

The json package imports `re` and `enum`, about 5 ms at every start of a short-lived process;
each `minirun-oci` call is such a process and runc answers in ~13 ms, so we use the C
scanner and encoder from `_json` (the same code json uses underneath) directly.

The boundary (with record.py, its dataclasses twin): this module is for the code the
short-lived processes load, and only for it: the `minirun-oci` verbs (minirun/oci/,
minirun/kernel/) and the per-container monitor (engine/monitor.py and the engine modules on its
start path: engine/records.py, engine/logs.py). tests/unit/test_startup_budget.py checks that
they never load `json`. Everything else (the CLI, compose, the API service, image and network
code, the rest of the engine) uses the standard `json`.
"""

import _json

# No `from __future__ import annotations`: that statement also imports the standard library's
# __future__.py (~0.1 ms of minirun-oci's quick path, oci/quick.py). Annotations that name
# what is not there at run time are written as strings instead.
TYPE_CHECKING = False  # `import typing` costs ~7 ms per start
if TYPE_CHECKING:
    from typing import Any


class _Context:
    # The attributes the C scanner reads from its context (json.decoder.JSONDecoder's).
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


_scan = _json.make_scanner(_Context())
_WS = " \t\n\r"


class JSONError(ValueError):
    """Not valid JSON; the message gives the character offset."""


def loads(text: "str | bytes") -> "Any":
    """Parse a JSON document."""
    if isinstance(text, bytes):
        text = text.decode()
    start = len(text) - len(text.lstrip(_WS))
    try:
        obj, end = _scan(text, start)
    except StopIteration as e:
        raise JSONError(f"invalid JSON at character {e.value}") from None
    except ValueError as e:  # json.decoder.JSONDecodeError
        raise JSONError(str(e)) from None
    except SystemError:
        # Python 3.11's _json looks JSONDecodeError up in sys.modules without importing it: if
        # json.decoder is not loaded, an error such as '{x' ends in SystemError. Load it (on
        # errors only) and scan again for the message.
        import json.decoder  # noqa: F401

        try:
            _scan(text, start)
        except StopIteration as e:
            raise JSONError(f"invalid JSON at character {e.value}") from None
        except ValueError as e:
            raise JSONError(str(e)) from None
        raise JSONError("invalid JSON") from None
    if text[end:].strip(_WS):
        raise JSONError(f"extra data after JSON value at character {end}")
    return obj


def _default(o: "Any") -> "Any":
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


_encode = _json.make_encoder(None, _default, _json.encode_basestring_ascii, None, ": ", ", ",
                             False, False, True)
_encode_compact = _json.make_encoder(None, _default, _json.encode_basestring_ascii, None, ":", ",",
                                     False, False, True)


def dumps(obj: "Any", indent: "int | None" = None, compact: bool = False) -> str:
    """Serialise to JSON; `indent` pretty-prints like json.dumps(indent=N)."""
    if indent is None:
        return "".join((_encode_compact if compact else _encode)(obj, 0))
    return _pretty(obj, indent, 0)


def _pretty(obj: "Any", indent: int, level: int) -> str:
    pad = " " * (indent * (level + 1))
    end = " " * (indent * level)
    if isinstance(obj, dict) and obj:
        items = [f"{pad}{_json.encode_basestring_ascii(_key(k))}: {_pretty(v, indent, level + 1)}"
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(obj, (list, tuple)) and obj:
        items = [pad + _pretty(v, indent, level + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + end + "]"
    return "".join(_encode(obj, 0))


def _key(k: "Any") -> str:
    """A dict key as json.dumps writes it (True -> "true", not str(True) -> "True")."""
    if isinstance(k, str):
        return k
    if k is True or k is False or k is None:
        return {True: "true", False: "false", None: "null"}[k]
    if isinstance(k, (int, float)):
        return "".join(_encode(k, 0))
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")
