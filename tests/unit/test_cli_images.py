"""images, tag, rmi, image inspect, history, image prune: Docker's output shapes and exit codes.

Images are put into a store under tmp_path through the Store API (imagehelpers.build_image);
the commands run through click's CliRunner with --root tmp_path, so no root is needed.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone

import pytest

from oneline import one_line_error
from minirun.cli import images as images_cli
from minirun.cli import main
from minirun.engine.api import images as images_api
from minirun.image.store import Store

from .imagehelpers import build_image


def ago(**delta) -> str:
    return (datetime.now(timezone.utc) - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def root(tmp_path):
    return tmp_path


@pytest.fixture
def store(root):
    return Store(os.path.join(root, "image"), sync=False)


@pytest.fixture
def run(root, cli_runner):
    runner = cli_runner

    def invoke(*args, input=None):
        result = runner.invoke(main, ["--root", str(root), *args], input=input)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    return invoke


@pytest.fixture
def three(store):
    """busybox (2 hours old), alpine with two tags and a repo digest (3 days), a dangling one."""
    busybox = build_image(store, ("busybox:latest",), created=ago(hours=2))
    alpine = build_image(store, ("alpine:3.19", "alpine:latest"), created=ago(days=3),
                         digests=("alpine@sha256:" + "a" * 64,),
                         layers=[{"big": b"x" * 4_260_000}, {"etc/os-release": b"ID=alpine\n"}],
                         labels={"org.example.kind": "base", "vendor": "alpine"})
    dangling = build_image(store, (), created=ago(days=20), layers=[{"old": b"o" * 1500}])
    return busybox, alpine, dangling


def lines(text: str) -> list[str]:
    return text.splitlines()


# --- units ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("size,precision,text", [
    (0, 3, "0B"), (999, 3, "999B"), (1000, 3, "1kB"), (1234, 3, "1.23kB"), (4_260_000, 3, "4.26MB"),
    (5_591_300, 3, "5.59MB"), (123_456_789, 3, "123MB"), (2_000_000_000, 3, "2GB"), (1234, 4, "1.234kB"),
    (11_290, 4, "11.29kB"),
])
def test_human_size_is_go_units(size, precision, text):
    assert images_cli.human_size(size, precision) == text


@pytest.mark.parametrize("seconds,text", [
    (0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
    (150, "2 minutes"), (3600, "About an hour"), (2 * 3600, "2 hours"), (47 * 3600, "47 hours"),
    (3 * 86400, "3 days"), (20 * 86400, "2 weeks"), (90 * 86400, "3 months"), (800 * 86400, "2 years"),
])
def test_human_duration_is_go_units(seconds, text):
    assert images_cli.human_duration(seconds) == text


def test_path_match_is_go_path_match():
    m = images_api.path_match
    assert m("alp*", "alpine") and not m("*", "user/repo") and m("*/*", "user/repo")
    assert m("alpine:3.?9", "alpine:3.19") and m("[ab]lpine", "alpine") and not m("[^a]lpine", "alpine")


# --- images ----------------------------------------------------------------------------------------

def test_images_table_is_dockers(run, three):
    busybox, alpine, dangling = three
    out = run("images")
    assert out.exit_code == 0
    assert lines(out.stdout) == [
        "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE",
        f"busybox      latest    {busybox.short_id}   2 hours ago   4.01kB",
        f"alpine       3.19      {alpine.short_id}   3 days ago    4.26MB",
        f"alpine       latest    {alpine.short_id}   3 days ago    4.26MB",
        f"<none>       <none>    {dangling.short_id}   2 weeks ago   1.5kB",
    ]


def test_image_ls_is_images(run, three):
    assert run("image", "ls").stdout == run("images").stdout
    assert run("image", "list").stdout == run("images").stdout


def test_images_empty_store_prints_the_header(run):
    assert run("images").stdout == "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"


def test_images_quiet_one_id_per_image(run, three):
    busybox, alpine, dangling = three
    assert lines(run("images", "-q").stdout) == [busybox.short_id, alpine.short_id, dangling.short_id]
    assert lines(run("images", "-q", "--no-trunc").stdout) == [busybox.id, alpine.id, dangling.id]


def test_images_all_flag_is_accepted(run, three):
    assert run("images", "-a").stdout == run("images").stdout


def test_images_no_trunc_shows_full_ids(run, three):
    out = run("images", "--no-trunc").stdout
    assert three[0].id in out and "IMAGE ID" in lines(out)[0]


def test_images_digests_column(run, three):
    out = lines(run("images", "--digests").stdout)
    assert out[0].split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED", "SIZE"]
    assert out[1].split()[:3] == ["busybox", "latest", "<none>"]
    assert out[2].split()[:3] == ["alpine", "3.19", "sha256:" + "a" * 64]
    assert out[3].split()[:3] == ["alpine", "latest", "sha256:" + "a" * 64]


def test_images_digest_only_image_shows_its_repository_and_none_tag(run, store):
    img = build_image(store, (), digests=("localhost:5000/app@sha256:" + "b" * 64,))
    out = lines(run("images").stdout)
    assert out[1].split()[:3] == ["localhost:5000/app", "<none>", img.short_id]
    assert lines(run("images", "--digests").stdout)[1].split()[2] == "sha256:" + "b" * 64


def test_images_format_json_has_dockers_keys(run, three):
    rows = [json.loads(line) for line in lines(run("images", "--format", "json").stdout)]
    assert len(rows) == 4
    assert list(rows[0]) == ["Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository",
                             "SharedSize", "Size", "Tag", "UniqueSize", "VirtualSize"]
    assert rows[0]["Repository"] == "busybox" and rows[0]["Tag"] == "latest"
    assert rows[0]["CreatedSince"] == "2 hours ago" and rows[0]["Size"] == rows[0]["VirtualSize"] == "4.01kB"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+", rows[0]["CreatedAt"])
    assert rows[3]["Repository"] == rows[3]["Tag"] == "<none>"
    assert "\\u003cnone\\u003e" in run("images", "--format", "json").stdout  # Go's escaping


def test_images_format_templates(run, three):
    busybox, alpine, _ = three
    assert lines(run("images", "--format", "{{.Repository}}:{{.Tag}}").stdout) == [
        "busybox:latest", "alpine:3.19", "alpine:latest", "<none>:<none>"]
    assert lines(run("images", "--format", "{{.ID}}").stdout)[0] == busybox.short_id
    assert json.loads(lines(run("images", "--format", "{{json .}}").stdout)[1])["Tag"] == "3.19"


def test_images_format_table_template(run, three):
    assert lines(run("images", "--format", "table {{.Repository}}\\t{{.Size}}").stdout) == [
        "REPOSITORY   SIZE", "busybox      4.01kB", "alpine       4.26MB", "alpine       4.26MB",
        "<none>       1.5kB"]
    assert lines(run("images", "--format", "table").stdout)[0].startswith("REPOSITORY   TAG")


def test_images_bad_template_is_dockers_one_line_1(run, three):
    one_line_error(run("images", "--format", "{{.Nope}}"), "minirun: ", 1,
                   re.escape('template parsing error: template: :1:2: executing "" at <.Nope>: '
                             "can't evaluate field Nope in type *formatter.imageContext"))
    one_line_error(run("images", "--format", "{{range .}}"), "minirun: ", 1,
                   re.escape("template parsing error: template: :1: unexpected EOF"))


def test_filter_dangling(run, three):
    busybox, alpine, dangling = three
    assert lines(run("images", "-q", "-f", "dangling=true").stdout) == [dangling.short_id]
    assert lines(run("images", "-q", "--filter", "dangling=false").stdout) == [busybox.short_id, alpine.short_id]


def test_filter_reference(run, three):
    out = run("images", "--format", "{{.Repository}}:{{.Tag}}", "-f", "reference=alpine").stdout
    assert lines(out) == ["alpine:3.19", "alpine:latest"]
    out = run("images", "--format", "{{.Repository}}:{{.Tag}}", "-f", "reference=*:3.*").stdout
    assert lines(out) == ["alpine:3.19"]
    out = run("images", "--format", "{{.Tag}}", "-f", "reference=alpine", "-f", "reference=busy*").stdout
    assert lines(out) == ["latest", "3.19", "latest"]
    assert run("images", "-q", "-f", "reference=nothing*").stdout == ""


def test_positional_repository_and_tag(run, three):
    assert lines(run("images", "--format", "{{.Tag}}", "alpine").stdout) == ["3.19", "latest"]
    assert lines(run("images", "--format", "{{.Tag}}", "alpine:latest").stdout) == ["latest"]
    assert lines(run("images", "--format", "{{.Tag}}", "docker.io/library/alpine").stdout) == ["3.19", "latest"]


def test_filter_label(run, three):
    busybox, alpine, _ = three
    assert lines(run("images", "-q", "-f", "label=vendor").stdout) == [alpine.short_id]
    assert lines(run("images", "-q", "-f", "label=org.example.kind=test").stdout) == [busybox.short_id,
                                                                                     three[2].short_id]
    assert run("images", "-q", "-f", "label=vendor=other").stdout == ""
    assert run("images", "-q", "-f", "label=vendor", "-f", "label=org.example.kind=test").stdout == ""


def test_filter_before_and_since(run, three):
    busybox, alpine, dangling = three
    assert lines(run("images", "-q", "-f", "before=alpine:latest").stdout) == [dangling.short_id]
    assert lines(run("images", "-q", "-f", "since=alpine").stdout) == [busybox.short_id]


@pytest.mark.parametrize("flt,msg", [("dangling=maybe", "invalid filter 'dangling=maybe'"),
                                     ("labels=a", "invalid filter 'labels'"),
                                     ("dangling", "bad format of filter")])
def test_bad_filters_are_one_line_125(run, three, flt, msg):
    one_line_error(run("images", "-f", flt), "minirun: ", 125, re.escape(msg))


# --- tag -------------------------------------------------------------------------------------------

def test_tag_adds_a_name_without_copying(run, store, three):
    busybox = three[0]
    blobs, layers = store.blobs(), store.layers()
    assert run("tag", "busybox", "localhost:5000/mine:v1").exit_code == 0
    assert run("image", "tag", busybox.short_id, "other").exit_code == 0
    assert store.resolve("localhost:5000/mine:v1").id == busybox.id
    assert store.resolve("other:latest").id == busybox.id
    assert (store.blobs(), store.layers()) == (blobs, layers)
    out = lines(run("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout)
    assert f"localhost:5000/mine:v1 {busybox.short_id}" in out and f"other:latest {busybox.short_id}" in out


def test_tag_moves_an_existing_tag(run, store, three):
    busybox, alpine, _ = three
    run("tag", "alpine:3.19", "busybox")
    assert store.resolve("busybox").id == alpine.id
    assert store.image(busybox.id).repo_tags == []  # now dangling


def test_tag_errors(run, three):
    one_line_error(run("tag", "nosuch", "x"), "minirun: ", 1, "no such image: nosuch:latest")
    one_line_error(run("tag", "busybox", "Upper"), "minirun: ", 125, "invalid reference format.*lowercase")
    one_line_error(run("tag", "busybox", "x@sha256:" + "c" * 64), "minirun: ", 125, "invalid reference format")


# --- rmi -------------------------------------------------------------------------------------------

def test_rmi_untags_when_other_tags_remain(run, store, three):
    alpine = three[1]
    out = run("rmi", "alpine:3.19")
    assert out.exit_code == 0 and out.stdout == "Untagged: alpine:3.19\n"
    assert store.image(alpine.id).repo_tags == ["docker.io/library/alpine:latest"]


def test_rmi_last_tag_deletes_the_image_its_digests_and_layers(run, store, three):
    busybox, alpine, _ = three
    layer_dirs = [store.layer_dir(d) for d in alpine.diff_ids]
    run("rmi", "alpine:3.19")
    out = run("rmi", "alpine")
    assert out.exit_code == 0
    assert lines(out.stdout) == ["Untagged: alpine:latest", "Untagged: alpine@sha256:" + "a" * 64,
                                 f"Deleted: {alpine.id}", *(f"Deleted: {d}" for d in sorted(alpine.diff_ids))]
    assert not store.has_image(alpine.id)
    assert not any(os.path.exists(d) for d in layer_dirs)
    assert not store.has_blob(alpine.id) and not store.has_blob(alpine.manifest)
    assert store.has_image(busybox.id) and store.has_layer(busybox.diff_ids[0])


def test_rmi_keeps_layers_another_image_shares(run, store):
    shared = {"lib/shared.so": b"s" * 100}
    a = build_image(store, ("a",), layers=[shared, {"a": b"a"}])
    b = build_image(store, ("b",), layers=[shared, {"b": b"b"}])
    out = run("rmi", "a")
    assert f"Deleted: {a.diff_ids[1]}" in out.stdout and a.diff_ids[0] not in out.stdout
    assert store.has_layer(b.diff_ids[0])


def test_rmi_no_prune_keeps_layers(run, store, three):
    busybox = three[0]
    run("rmi", "--no-prune", "busybox")
    assert store.has_layer(busybox.diff_ids[0])


def test_rmi_by_id_refuses_several_repositories_unless_forced(run, store, three):
    busybox = three[0]
    run("tag", "busybox", "second")
    one_line_error(run("rmi", busybox.short_id), "minirun: ", 1,
                   rf"conflict: unable to delete {busybox.short_id} \(must be forced\) - image is "
                   "referenced in multiple repositories")
    assert store.has_image(busybox.id)
    out = run("rmi", "-f", busybox.short_id)
    assert lines(out.stdout)[:3] == ["Untagged: busybox:latest", "Untagged: second:latest",
                                     f"Deleted: {busybox.id}"]
    assert not store.has_image(busybox.id)


def test_rmi_by_id_with_tags_of_one_repository_needs_no_force(run, store, three):
    alpine = three[1]
    out = run("rmi", alpine.id)
    assert out.exit_code == 0
    assert lines(out.stdout)[:4] == ["Untagged: alpine:3.19", "Untagged: alpine:latest",
                                     "Untagged: alpine@sha256:" + "a" * 64, f"Deleted: {alpine.id}"]


def test_rmi_dangling_by_id_prefix(run, store, three):
    dangling = three[2]
    out = run("image", "rm", "sha256:" + dangling.id[7:20])
    assert lines(out.stdout)[0] == f"Deleted: {dangling.id}"


def test_rmi_missing_image_exits_1_and_goes_on(run, store, three):
    out = run("rmi", "nosuch", "busybox", "0123456789abcdef")
    assert out.exit_code == 1
    assert "Untagged: busybox:latest" in out.stdout
    assert not store.has_image(three[0].id)
    errors = lines(out.stderr)
    assert errors == ["minirun: no such image: nosuch:latest", "minirun: no such image: 0123456789abcdef:latest"]


def test_rmi_refuses_an_image_a_container_uses(run, store, three, monkeypatch):
    busybox = three[0]
    monkeypatch.setattr(images_api, "containers_using", lambda store, image_id: ["f" * 64] if image_id == busybox.id else [])
    one_line_error(run("rmi", "busybox"), "minirun: ", 1, r"unable to remove repository reference \"busybox\" \(must force\)"
                                             " - container ffffffffffff is using its referenced image")
    one_line_error(run("rmi", busybox.short_id), "minirun: ", 1, "image is being used by container ffffffffffff")
    assert store.image(busybox.id).repo_tags == ["docker.io/library/busybox:latest"]
    # -f removes the name, never the container's image (its layers are that rootfs)
    out = run("rmi", "-f", "busybox")
    assert out.exit_code == 0 and out.stdout == "Untagged: busybox:latest\n"
    assert store.has_image(busybox.id) and store.has_layer(busybox.diff_ids[0])
    out = run("rmi", "-f", busybox.short_id)
    assert out.exit_code == 0 and "kept" in out.stderr and store.has_image(busybox.id)


def test_rmi_needs_an_argument(run):
    assert run("rmi").exit_code == 125  # a usage error, as Docker's CLI: tests/unit/test_cli_usage.py


# --- image inspect ---------------------------------------------------------------------------------

def test_inspect_is_a_json_array_with_dockers_keys(run, store, three):
    alpine = three[1]
    out = run("image", "inspect", "alpine:3.19")
    assert out.exit_code == 0 and out.stdout.startswith("[\n    {\n")
    [data] = json.loads(out.stdout)
    for key in ("Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Author", "Config",
                "Architecture", "Os", "Size", "RootFS", "Metadata"):
        assert key in data
    assert data["Id"] == alpine.id
    assert data["RepoTags"] == ["alpine:3.19", "alpine:latest"]
    assert data["RepoDigests"] == ["alpine@sha256:" + "a" * 64]
    assert data["Created"] == alpine.created and data["Author"] == "tests"
    assert data["Architecture"] == "amd64" and data["Os"] == "linux" and "Variant" not in data
    assert data["Size"] == alpine.size == 4_260_010
    assert data["RootFS"] == {"Type": "layers", "Layers": alpine.diff_ids}
    cfg = data["Config"]
    for key in ("User", "Env", "Cmd", "Entrypoint", "WorkingDir", "ExposedPorts", "Volumes", "Labels",
                "StopSignal"):
        assert key in cfg
    assert cfg["Cmd"] == ["sh"] and cfg["Entrypoint"] is None and cfg["WorkingDir"] == "/"
    assert cfg["Labels"] == {"org.example.kind": "base", "vendor": "alpine"}
    assert cfg["Env"][0].startswith("PATH=")


def test_inspect_keeps_config_extras(run, store):
    build_image(store, ("web",), entrypoint=["/entry"], extra_config={"variant": "v8", "comment": "hello"},
                cmd=None)
    [data] = json.loads(run("image", "inspect", "web").stdout)
    assert data["Variant"] == "v8" and data["Comment"] == "hello"
    assert data["Config"]["Entrypoint"] == ["/entry"] and data["Config"]["Cmd"] is None


def test_inspect_format(run, three):
    busybox, alpine, _ = three
    out = run("image", "inspect", "-f", "{{.Id}} {{json .Config.Cmd}} {{.Config.Labels.vendor}}", "alpine")
    assert out.stdout == f'{alpine.id} ["sh"] alpine\n'
    out = run("image", "inspect", "--format", "{{.Config.Env}}|{{.Os}}", "busybox", alpine.short_id)
    assert lines(out.stdout) == [
        "[PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin]|linux"] * 2
    assert lines(run("image", "inspect", "-f", "{{.RootFS.Layers}}", "busybox").stdout) == [
        f"[{busybox.diff_ids[0]}]"]


def test_inspect_several_and_missing(run, three):
    out = run("image", "inspect", "busybox", "nosuch", "alpine")
    assert out.exit_code == 1
    assert [d["RepoTags"][0] for d in json.loads(out.stdout)] == ["busybox:latest", "alpine:3.19"]
    assert out.stderr == "minirun: no such image: nosuch:latest\n"
    out = run("image", "inspect", "nosuch")
    assert out.exit_code == 1 and json.loads(out.stdout) == []


def test_inspect_bad_template_is_dockers(run, three):
    # docker: the raw-JSON fallback with missingkey=error, exit 1; a template that does not parse: 64
    one_line_error(run("image", "inspect", "-f", "{{.Nope}}", "busybox"), "minirun: ", 1,
                   re.escape('template parsing error: template: :1:2: executing "" at <.Nope>: '
                             'map has no entry for key "Nope"'))
    one_line_error(run("image", "inspect", "-f", "{{nope}}", "busybox"), "minirun: ", 64,
                   re.escape('template parsing error: template: :1: function "nope" not defined'))


# --- history ---------------------------------------------------------------------------------------

def test_history_table_is_dockers(run, store):
    img = build_image(store, ("app",), created=ago(hours=5), layers=[{"a": b"a" * 2000}, {"b": b"b" * 300}],
                      history=[
                          {"created": ago(days=10), "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
                          {"created": ago(days=10), "created_by": '/bin/sh -c #(nop)  CMD ["sh"]',
                           "empty_layer": True},
                          {"created": ago(hours=5), "created_by": "RUN /bin/sh -c apk add\tcurl # buildkit",
                           "comment": "buildkit.dockerfile.v0"},
                          {"created": ago(hours=5), "created_by": "ENV A=1", "empty_layer": True,
                           "comment": "buildkit.dockerfile.v0"},
                      ])
    out = run("history", "app")
    assert out.exit_code == 0
    assert lines(out.stdout) == [
        "IMAGE          CREATED       CREATED BY                               SIZE      COMMENT",
        f"{img.short_id}   5 hours ago   ENV A=1                                  0B        buildkit.dockerfile.v0",
        "<missing>      5 hours ago   RUN /bin/sh -c apk add curl # buildkit   300B      buildkit.dockerfile.v0",
        "<missing>      10 days ago   /bin/sh -c #(nop)  CMD [\"sh\"]            0B        ",
        "<missing>      10 days ago   /bin/sh -c #(nop) ADD file:abc in /      2kB       ",
    ]
    assert run("image", "history", "app").stdout == out.stdout


def test_history_truncates_created_by_to_45(run, store):
    long = "/bin/sh -c " + "x" * 100
    img = build_image(store, ("app",), history=[{"created": ago(days=1), "created_by": long}])
    row = lines(run("history", "app").stdout)[1]
    assert ("/bin/sh -c " + "x" * 33 + "…") in row and long not in row
    out = run("history", "--no-trunc", "app").stdout
    assert long in out and img.id in out


def test_history_quiet_human_and_format(run, store, three):
    busybox = three[0]
    assert lines(run("history", "-q", "busybox").stdout) == [busybox.short_id, "<missing>"]
    raw = lines(run("history", "-H", "false", "--format", "{{.CreatedSince}} {{.Size}}", "busybox").stdout)
    assert raw[1] == f"{busybox.created[:19]}Z {busybox.size}"
    out = run("history", "--format", "{{.ID}}|{{.Size}}|{{.CreatedBy}}", "busybox").stdout
    assert lines(out)[1].startswith("<missing>|4.01kB|/bin/sh -c #(nop) ADD file:")


def test_history_missing_image_exits_1(run, three):
    one_line_error(run("history", "nosuch"), "minirun: ", 1, "no such image: nosuch:latest")


# --- image prune -----------------------------------------------------------------------------------

def test_prune_without_force_and_without_a_terminal_is_a_no(run, store, three):
    out = run("image", "prune")
    assert out.exit_code == 0
    assert out.stdout.startswith("WARNING! This will remove all dangling images.\n"
                                 "Are you sure you want to continue? [y/N] ")
    assert out.stdout.endswith("Total reclaimed space: 0B\n")
    assert "pass -f" in out.stderr
    assert store.has_image(three[2].id)


@pytest.mark.parametrize("answer,removed", [("y\n", True), ("Y\n", True), ("n\n", False), ("\n", False)])
def test_prune_asks_on_a_terminal(run, store, three, monkeypatch, answer, removed):
    monkeypatch.setattr(images_cli, "_stdin_is_tty", lambda: True)
    out = run("image", "prune", input=answer)
    assert out.exit_code == 0
    assert store.has_image(three[2].id) is not removed
    assert ("Deleted Images:" in out.stdout) is removed


def test_prune_force_removes_dangling_only(run, store, three):
    busybox, alpine, dangling = three
    out = run("image", "prune", "-f")
    assert out.exit_code == 0
    assert lines(out.stdout) == ["Deleted Images:", f"deleted: {dangling.id}", f"deleted: {dangling.diff_ids[0]}",
                                 "", lines(out.stdout)[-1]]
    assert re.fullmatch(r"Total reclaimed space: \d+(\.\d+)?kB", lines(out.stdout)[-1])
    assert not store.has_image(dangling.id) and not store.has_layer(dangling.diff_ids[0])
    assert store.has_image(busybox.id) and store.has_image(alpine.id)
    assert run("image", "prune", "-f").stdout == "Total reclaimed space: 0B\n"


def test_prune_all_removes_every_unused_image(run, store, three, monkeypatch):
    busybox, alpine, dangling = three
    monkeypatch.setattr(images_api, "containers_using", lambda store, i: ["c" * 64] if i == busybox.id else [])
    out = run("image", "prune", "-a", "-f")
    assert "untagged: alpine:3.19" in out.stdout and f"deleted: {alpine.id}" in out.stdout
    assert "untagged: alpine@sha256:" + "a" * 64 in out.stdout
    assert store.images() == [store.image(busybox.id)]
    assert store.has_layer(busybox.diff_ids[0])


def test_prune_all_warning(run, three):
    assert "without at least one container" in run("image", "prune", "-a").stdout


# --- errors -----------------------------------------------------------------------------------------

def test_invalid_reference_in_rmi_and_inspect_is_exit_1(run, three):
    one_line_error(run("rmi", "UPPER"), "minirun: ", 1, "invalid reference format")
    one_line_error(run("image", "inspect", "UPPER"), "minirun: ", 1, "invalid reference format")


def test_id_prefixes_need_12_digits(run, store):
    a = build_image(store, ("a",))
    one_line_error(run("image", "inspect", a.id[7:18]), "minirun: ", 1, "no such image")
    assert run("image", "inspect", a.short_id).exit_code == 0


def test_no_container_uses_an_image_in_a_fresh_root(store):
    assert images_api.containers_using(store, "sha256:" + "0" * 64) == []
