"""The docker CLI's default tables, without the template engine.

Every listing's default output (`ps`, `images`, `network ls`, `volume ls`) is a table whose
template is only fields between tabs ("{{.ID}}\\t{{.Image}}..."). Rendering it through
base/gotemplate.py costs each of those commands ~2 ms (the module, `json` and `re`, and the
template's parse): here the same output is made directly. `plain` declines (returns None)
whatever it cannot make byte-identical to the template path -- a template that is not plain
fields, a missing field, a value that is not a string -- and the caller renders it through
gotemplate.Format as before (tests/unit/test_table.py compares the two).

tabwrite lives here too (gotemplate re-exports it): the alignment is the same on both paths.
"""

from __future__ import annotations

TABLE_MINWIDTH, TABLE_PADDING = 10, 3  # docker's tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)


def tabwrite(lines, minwidth: int = TABLE_MINWIDTH, padding: int = TABLE_PADDING) -> str:
    """Align tab-separated cells as Go's tabwriter does for docker: each column as wide as its
    widest cell plus padding, at least minwidth; the last cell of a line is not padded."""
    rows = [line.split("\t") for line in lines]
    widths: list[int] = []
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            if i == len(widths):
                widths.append(0)
            widths[i] = max(widths[i], len(cell) + padding, minwidth)
    return "".join("".join(c.ljust(widths[i]) for i, c in enumerate(row[:-1])) + row[-1] + "\n"
                   for row in rows)


def _fields(template: str) -> list[str] | None:
    """["ID", "Image"] for "{{.ID}}\\t{{.Image}}"; None for anything else."""
    out = []
    for cell in template.split("\t"):
        name = cell[3:-2]
        if not (cell.startswith("{{.") and cell.endswith("}}") and name.isidentifier()):
            return None
        out.append(name)
    return out


def plain(template: str, headers: dict[str, str], rows: list[dict]) -> str | None:
    """The table `table TEMPLATE` prints for rows (a header row, aligned columns), or None
    when the template path must make it (see the module docstring)."""
    fields = _fields(template)
    if fields is None:
        return None
    lines = ["\t".join(headers.get(f, f.upper()) for f in fields)]
    for row in rows:
        cells = [row.get(f) for f in fields]
        if not all(type(c) is str for c in cells):
            return None
        lines.append("\t".join(cells))
    return tabwrite(lines)
