"""--format everywhere, sizes, df -v and image prune filters, seen from the command line
(issue 17): Go templates as docker runs them, docker's output shapes and exit statuses."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.usefixtures("mr_home")


@pytest.fixture
def made(mr):
    """A stopped container that wrote 5000 bytes, with a label, on a network of its own."""
    mr.ok("network", "create", "--subnet", "10.117.0.0/24", "fmt17")
    mr.ok("volume", "create", "--label", "a=<b>&", "fmt17v")
    mr.ok("run", "--name", "fmt17c", "--label", "com.example=x", "--network", "fmt17",
          "-v", "fmt17v:/data", "busybox", "sh", "-c", "head -c 5000 /dev/zero > /f")
    yield "fmt17c"
    mr("rm", "-f", "fmt17c")
    mr("volume", "rm", "fmt17v")
    mr("network", "rm", "fmt17")


def test_ps_size_and_inspect_size_are_real(mr, made):
    out = mr.ok("ps", "-a", "-s", "--filter", "name=fmt17c").splitlines()
    assert out[0].split()[-1] == "SIZE"
    assert re.search(r"\d+(\.\d+)?kB \(virtual \d+(\.\d+)?MB\)$", out[1]), out
    rw, rootfs = mr.ok("inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", made).split()
    image_size = json.loads(mr.ok("image", "inspect", "busybox"))[0]["Size"]
    assert int(rw) >= 5000 and int(rootfs) == int(rw) + image_size
    # without -s docker's inspect has no SizeRw
    assert "SizeRw" not in json.loads(mr.ok("inspect", made))[0]


def test_inspect_templates_as_dockers_docs_write_them(mr, made):
    assert mr.ok("inspect", "-f", '{{index .Config.Labels "com.example"}}', made) == "x\n"
    assert mr.ok("inspect", "-f", '{{(index .NetworkSettings.Networks "fmt17").IPAddress}}',
                 made).startswith("10.117.0.")
    assert mr.ok("inspect", "-f", "{{range .Mounts}}{{.Name}}:{{.Destination}}{{end}}", made) \
        == "fmt17v:/data\n"
    assert json.loads(mr.ok("inspect", "-f", "{{json .Config.Labels}}", made))["com.example"] == "x"
    r = mr("inspect", "-f", "{{.Foo}}", made)
    assert (r.returncode, r.stderr) == (1, 'minirun: template parsing error: template: :1:2: '
                                           'executing "" at <.Foo>: map has no entry for key "Foo"\n')
    r = mr("inspect", "-f", "{{.Foo", made)
    assert (r.returncode, r.stderr) == (64, "minirun: template parsing error: template: :1: "
                                            "unclosed action\n")


def test_ps_templates_and_errors(mr, made):
    out = mr.ok("ps", "-a", "--filter", "name=fmt17c", "--format",
                'table {{.Names}}\t{{.Label "com.example"}}\t{{upper .State}}')
    assert out.split("\n")[:2] == ["NAMES     com.example   STATE", "fmt17c    x             EXITED"]
    row = json.loads(mr.ok("ps", "-a", "--filter", "name=fmt17c", "--format", "json"))
    assert row["Names"] == "fmt17c" and "Label" not in row
    r = mr("ps", "-a", "--format", "{{.Foo}}")
    assert r.returncode == 1 and r.stderr.startswith(
        'minirun: failed to execute template: template: :1:2: executing "" at <.Foo>: '
        "can't evaluate field Foo in type *formatter.ContainerContext")


def test_network_and_volume_inspect_and_ls_formats(mr, made):
    assert mr.ok("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
                 "fmt17") == "10.117.0.0/24\n"
    assert mr.ok("volume", "inspect", "--format", "{{ .Name }} {{json .Labels}}", "fmt17v") \
        == 'fmt17v {"a":"<b>&"}\n'
    r = mr("volume", "inspect", "-f", "{{.Foo}}", "fmt17v")
    assert r.returncode == 1 and "can't evaluate field Foo in type volume.Volume" in r.stderr
    rows = [json.loads(x) for x in mr.ok("volume", "ls", "--format", "json").splitlines()]
    assert any(x["Name"] == "fmt17v" and x["Labels"] == "a=\\u003cb\\u003e\\u0026" or
               x["Name"] == "fmt17v" for x in rows)
    assert mr.ok("volume", "ls", "--filter", "name=fmt17v", "--format", '{{.Label "a"}}') == "<b>&\n"
    assert "fmt17" in mr.ok("network", "ls", "--format", "{{.Name}}").split()


def test_info_version_and_df_take_json_and_templates(mr, made):
    info = json.loads(mr.ok("info", "--format", "json"))
    assert info["Containers"] >= 1 and info["Driver"] == "overlay"
    assert mr.ok("info", "--format", "{{.Driver}}") == "overlay\n"
    v = json.loads(mr.ok("version", "--format", "{{json .}}"))
    assert v["Client"]["Version"] == v["Server"]["Version"]
    r = mr("version", "--format", "{{.Foo}}")
    assert r.returncode == 1 and 'template: version:1:2: executing "version" at <.Foo>' in r.stderr
    rows = [json.loads(x) for x in mr.ok("system", "df", "--format", "json").splitlines()]
    assert [x["Type"] for x in rows] == ["Images", "Containers", "Local Volumes", "Build Cache"]
    assert sorted(rows[0]) == ["Active", "Reclaimable", "Size", "TotalCount", "Type"]
    assert mr.ok("system", "df", "--format", "{{.Type}}:{{.TotalCount}}").splitlines()[2] \
        .startswith("Local Volumes:")
    table = mr.ok("system", "df").splitlines()
    assert table[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]


def test_df_verbose_has_dockers_four_tables(mr, made):
    out = mr.ok("system", "df", "-v")
    for title in ("Images space usage:", "Containers space usage:", "Local Volumes space usage:",
                  "Build cache usage: 0B"):
        assert title in out
    lines = out.splitlines()
    assert lines[2].split()[:3] == ["REPOSITORY", "TAG", "IMAGE"] and "UNIQUE SIZE" in lines[2]
    c = next(x for x in lines if x.rstrip().endswith("fmt17c"))
    assert '"sh -c \'head -c 5…"' in c or "kB" in c
    v = next(x for x in lines if x.startswith("fmt17v "))
    assert v.split()[1] == "1"  # LINKS: the container using it


def test_image_prune_filters(mr, made):
    r = mr("image", "prune", "-f", "--filter", "nope=1")
    assert r.returncode != 0 and "invalid filter 'nope'" in r.stderr
    # busybox is used by a container: never pruned, whatever the filter
    out = mr.ok("image", "prune", "-a", "-f", "--filter", "until=1s", "--filter", "label!=x")
    assert out.endswith("Total reclaimed space: 0B\n")
    assert mr.ok("images", "-q", "busybox")


def test_images_filters_are_anded_and_same_key_ored(mr, made):
    mr.ok("tag", "busybox", "fmt17/one:a")
    try:
        both = mr.ok("images", "--format", "{{.Repository}}:{{.Tag}}",
                     "--filter", "reference=fmt17/*", "--filter", "reference=busybox")
        assert sorted(both.split()) == ["busybox:latest", "fmt17/one:a"]
        assert mr.ok("images", "-q", "--filter", "reference=fmt17/*", "--filter",
                     "dangling=true") == ""
        assert mr.ok("images", "--filter", "label=nope").splitlines()[1:] == []
        labelled = mr.ok("images", "--format", "{{.Repository}}", "--filter",
                         "label=org.minirun.demo=busybox", "--filter", "reference=fmt17/*")
        assert labelled.split() == ["fmt17/one"]
    finally:
        mr("rmi", "fmt17/one:a")
