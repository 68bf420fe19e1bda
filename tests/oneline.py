"""The one-line error every layer promises (minirun/errors.py), checked the same way in every test.

    from oneline import one_line_error      (tests/ is on sys.path: unit, integration, registry)

    one_line_error(stderr)                              the message, stripped
    one_line_error(err, "minirun-oci: ")                the runtime's message, without its prefix
    one_line_error(result, "minirun: ", 125, "no such") a finished run: its exit code, and a regex
    cli_error(result)                                   the front end's own error (exit 125)
"""

from __future__ import annotations

import re


def one_line_error(err, prefix: str = "", code: int | None = None,
                   match: str | None = None) -> str:
    """The error message in `err`, checked to be there, on one line, with no traceback, and
    to start with `prefix`; returned without the prefix and the surrounding blanks.

    `err` is stderr's text, or a finished run whose `.stderr` it is (subprocess's
    CompletedProcess, click's Result): then its exit code (`returncode` or `exit_code`) must
    be `code` when given. `match`: a regex the message must contain (re.search)."""
    if not isinstance(err, str):
        if code is not None:
            got = err.returncode if hasattr(err, "returncode") else err.exit_code
            assert got == code, (f"exit code {got}, not {code}", getattr(err, "stdout", ""),
                                 err.stderr)
        err = err.stderr
    elif code is not None:
        raise TypeError("one_line_error: an exit code needs the finished run, not its stderr")
    text = err.strip()
    assert text, "no error message"
    assert "\n" not in text, f"error is more than one line:\n{err}"
    assert "Traceback" not in text, err
    assert text.startswith(prefix), f"error does not start with {prefix!r}: {text}"
    message = text[len(prefix):]
    if match is not None:
        assert re.search(match, message), f"{match!r} not in {message!r}"
    return message


def cli_error(result) -> str:
    """The front end's own one-line error of a finished `minirun` run (exit 125), without the
    `minirun: ` prefix."""
    return one_line_error(result, "minirun: ", 125)
