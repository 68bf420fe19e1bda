"""base/table.py: the default tables made without the template engine must be byte for byte
what gotemplate.Format makes of the same template and rows (cli/render.table picks one or the
other), and it must decline what it cannot make so."""

from __future__ import annotations

import pytest

from minirun.base import table
from minirun.base.gotemplate import Format
from minirun.cli.images import IMAGES_DIGESTS_TABLE, IMAGES_HEADERS, IMAGES_TABLE
from minirun.cli.listing import PS_DEFAULT, PS_HEADERS
from minirun.cli.render import table as render_table

NET = ("table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
       {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE"})
VOL = ("table {{.Driver}}\t{{.Name}}", {"Driver": "DRIVER", "Name": "VOLUME NAME"})
PS_SIZE = (PS_DEFAULT + "\t{{.Size}}", PS_HEADERS)

CELLS = ["", "a", "busybox", "x" * 9, "y" * 10, "z" * 31, '"sh -c \'sleep 1…"', "é ü ß",
         "Up 5 seconds (healthy)", "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp", "a  b", "<none>"]


def _rows(template: str, n: int) -> list[dict]:
    fields = table._fields(template[len("table "):])
    return [{f: CELLS[(i * 7 + j * 3) % len(CELLS)] for j, f in enumerate(fields)}
            | {"Extra": 5, "Label": lambda k: ""} for i in range(n)]


@pytest.mark.parametrize(("template", "headers"), [
    (PS_DEFAULT, PS_HEADERS), PS_SIZE, (IMAGES_TABLE, IMAGES_HEADERS),
    (IMAGES_DIGESTS_TABLE, IMAGES_HEADERS), NET, VOL, ("table {{.Unnamed}}\t{{.ID}}", {})])
@pytest.mark.parametrize("n", [0, 1, 3, 12])
def test_the_plain_table_is_the_templates(template: str, headers: dict, n: int) -> None:
    rows = _rows(template, n)
    want = Format(template, headers, template[len("table "):]).write(rows)
    assert table.plain(template[len("table "):], headers, rows) == want
    assert render_table("", template, headers, rows) == want


@pytest.mark.parametrize("template", [
    "{{.ID}} {{.Name}}", "{{.ID}}\t{{.Name | upper}}", "{{ .ID }}", "{{.A.B}}", "x{{.ID}}",
    "{{json .}}", "{{.ID}}\t", ""])
def test_it_declines_anything_but_plain_fields(template: str) -> None:
    assert table.plain(template, {}, [{"ID": "a", "Name": "b"}]) is None


@pytest.mark.parametrize("row", [{"ID": 5, "Name": "b"}, {"ID": None, "Name": "b"},
                                 {"ID": True, "Name": "b"}, {"Name": "b"},
                                 {"ID": ["a"], "Name": "b"}])
def test_it_declines_values_the_template_prints_its_own_way(row: dict) -> None:
    """Not a string, or missing: Go's %v, or the template's error, is the template path's."""
    assert table.plain("{{.ID}}\t{{.Name}}", {}, [row]) is None


def test_render_table_falls_back_to_the_template() -> None:
    rows = [{"ID": 5, "Name": True}]
    want = Format("table {{.ID}}\t{{.Name}}", {}, "{{.ID}}\t{{.Name}}").write(rows)
    assert render_table("", "table {{.ID}}\t{{.Name}}", {}, rows) == want
    assert render_table("{{.ID}}", "table {{.ID}}\t{{.Name}}", {}, rows) == "5\n"
