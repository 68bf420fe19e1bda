"""The Go-template subset behind --format and inspect -f (minirun/base/gotemplate.py)."""

from __future__ import annotations

import pytest

from minirun.base.gotemplate import Format, Template, TemplateError, go_json, go_str, render, tabwrite

OBJ = {"Repository": "alpine", "Tag": "latest", "ID": "c059bfaa849c",
       "State": {"Pid": 4242, "Running": True, "Status": "running"},
       "Config": {"Cmd": ["sh", "-c", "echo hi"], "Labels": {"b": "2", "a": "<1>&"}, "Entrypoint": None}}


@pytest.mark.parametrize("template,expected", [
    ("{{.Repository}}:{{.Tag}}", "alpine:latest"),
    ("{{.ID}}", "c059bfaa849c"),
    ("id={{ .ID }}!", "id=c059bfaa849c!"),
    ("{{.State.Pid}}", "4242"),
    ("{{.State.Running}}", "true"),
    ("{{.Config.Cmd}}", "[sh -c echo hi]"),
    ("{{.Config.Labels}}", "map[a:<1>& b:2]"),
    ("{{.Config.Entrypoint}}", "<nil>"),
    ("no actions at all", "no actions at all"),
    ("", ""),
])
def test_fields(template, expected):
    assert render(template, OBJ) == expected


def test_json_of_a_field_is_compact_without_html_escapes():
    # docker's json function sets SetEscapeHTML(false): seen with docker 28's CLI
    assert render("{{json .Config.Labels}}", OBJ) == '{"b":"2","a":"<1>&"}'
    assert render("{{json .Config.Cmd}}", OBJ) == '["sh","-c","echo hi"]'
    assert render("{{json .State.Pid}}", OBJ) == "4242"
    assert render("{{json .Config.Entrypoint}}", OBJ) == "null"


def test_json_of_dot_is_the_whole_object():
    assert render("{{json .}}", {"A": 1, "B": "x"}) == '{"A":1,"B":"x"}'
    assert render("{{.}}", "plain") == "plain"


def test_go_json_keeps_non_ascii():
    assert go_json({"k": "é"}) == '{"k":"é"}'


@pytest.mark.parametrize("template,expected", [
    ("{{upper .Repository}}", "ALPINE"),
    ("{{lower \"ABC\"}}", "abc"),
    ("{{title .State.Status}}", "Running"),
    ("{{join .Config.Cmd \",\"}}", "sh,-c,echo hi"),
    ("{{join (split .Repository \"p\") \"-\"}}", "al-ine"),
    ("{{truncate .ID 4}}", "c059"),
    ("{{pad .Tag 1 2}}", " latest  "),
    ("{{.Repository | upper}}", "ALPINE"),
    ("{{.Config.Cmd | json}}", '["sh","-c","echo hi"]'),
    ("{{println .Tag}}", "latest\n"),
    ("{{split \"a:b\" \":\"}}", "[a b]"),
])
def test_functions_and_pipes(template, expected):
    if expected is None:
        with pytest.raises(TemplateError):
            render(template, OBJ)
    else:
        assert render(template, OBJ) == expected


def test_trim_markers_and_comments():
    assert render("a  {{- .Tag -}}  b", OBJ) == "alatestb"
    assert render("x{{/* a comment */}}y", OBJ) == "xy"


def test_missing_field_is_an_error_naming_it():
    with pytest.raises(TemplateError, match='at <.State.Nope>: map has no entry for key "Nope"'):
        render("{{.State.Nope}}", OBJ, missing_key="error")
    with pytest.raises(TemplateError, match="can't evaluate field Nope in type T"):
        render("{{.Nope}}", OBJ, type_name="T")
    assert render("{{.State.Nope}}", OBJ) == "<no value>"  # Go's default for a map


@pytest.mark.parametrize("template", ['{{define "x"}}y{{end}}', '{{template "x"}}',
                                      "{{range .Config.Cmd}}{{.}}", "{{end}}", "{{else}}",
                                      "{{if .A}}x{{else}}y{{else}}z{{end}}", "{{nosuchfunc .ID}}",
                                      "{{.ID", "{{.A..B}}", "{{(.ID}}", "{{range $a, $b, $c := .X}}{{end}}"])
def test_unsupported_or_bad_templates_fail_clearly(template):
    with pytest.raises(TemplateError) as info:
        Template(template)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 1 and info.value.parse


def test_attributes_of_objects_work_like_fields():
    class Row:
        Name = "x"
        _secret = "no"

    assert render("{{.Name}}", Row()) == "x"
    with pytest.raises(TemplateError):
        render("{{._secret}}", Row())


@pytest.mark.parametrize("value,text", [(None, "<nil>"), (True, "true"), (False, "false"), (3.0, "3"),
                                        (2.5, "2.5"), ([], "[]"), ({}, "map[]"), ([1, [2, 3]], "[1 [2 3]]"),
                                        ({"z": 1, "a": [True]}, "map[a:[true] z:1]")])
def test_go_str_prints_like_fmt(value, text):
    assert go_str(value) == text


def test_tabwrite_is_docker_tabwriter():
    # minwidth 10, padding 3, the last cell unpadded
    out = tabwrite(["REPOSITORY\tTAG\tSIZE", "alpine\tlatest\t5.59MB"])
    assert out == ("REPOSITORY   TAG       SIZE\n"
                   "alpine       latest    5.59MB\n")


def test_table_format_has_a_header_and_aligned_columns():
    fmt = Format("table {{.Repository}}\\t{{.ID}}", {"Repository": "REPOSITORY", "ID": "IMAGE ID"})
    assert fmt.table
    rows = [{"Repository": "a-long-repository-name", "ID": "1"}, {"Repository": "b", "ID": "2"}]
    assert fmt.write(rows) == ("REPOSITORY               IMAGE ID\n"
                               "a-long-repository-name   1\n"
                               "b                        2\n")


def test_table_header_of_a_field_without_a_title_is_its_name_in_capitals():
    # docker's HeaderFunctions: lower, upper, json ... give the title back unchanged
    fmt = Format("table {{.Size}}\t{{lower .ID}}", {"ID": "IMAGE ID"})
    assert fmt.write([{"Size": "1B", "ID": "X"}]) == "SIZE      IMAGE ID\n1B        x\n"


def test_plain_format_is_one_line_per_row_and_escapes_are_expanded():
    fmt = Format("{{.A}}\\t{{.B}}\\n", {})
    assert not fmt.table
    assert fmt.write([{"A": 1, "B": 2}]) == "1\t2\n\n"


def test_json_format_is_one_object_per_line():
    assert Format("json").write([{"A": 1}, {"A": 2}]) == '{"A":1}\n{"A":2}\n'


def test_bare_table_uses_the_default_columns():
    fmt = Format("table", {"A": "AA"}, default_table="{{.A}}\t{{.B}}")
    assert fmt.write([{"A": "x", "B": "y"}]) == "AA        B\nx         y\n"


def test_template_renders_many_objects():
    t = Template("{{.N}}")
    assert [t.render({"N": i}) for i in range(3)] == ["0", "1", "2"]


INSPECTED = {"Mounts": [{"Destination": "/a", "RW": True}, {"Destination": "/b", "RW": False}],
             "Config": {"Labels": {"b": "2", "a": "1"}, "Env": ["A=1"]}, "Args": ["x", "y"],
             "State": {"Running": True, "Pid": 7, "Status": "running"}, "Empty": []}


@pytest.mark.parametrize("template,expected", [
    ("{{range .Mounts}}{{.Destination}} {{end}}", "/a /b "),
    ('{{index .Config.Labels "a"}}', "1"),
    ("{{index .Args 1}}", "y"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "a=1;b=2;"),
    ("{{range $i, $m := .Mounts}}{{$i}}:{{$m.Destination}} {{end}}", "0:/a 1:/b "),
    ("{{range $m := .Mounts}}{{$m.RW}}{{end}}", "truefalse"),
    ("{{range .Empty}}x{{else}}none{{end}}", "none"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if .Empty}}a{{else if .Args}}b{{else}}c{{end}}", "b"),
    ("{{with .State}}{{.Pid}}{{end}}", "7"),
    ("{{with .Empty}}x{{else}}no{{end}}", "no"),
    ("{{len .Args}}", "2"),
    ('{{eq .State.Status "running" "paused"}}', "true"),
    ('{{if ne .State.Pid 0}}has a pid{{end}}', "has a pid"),
    ("{{gt (len .Mounts) 1}}", "true"),
    ("{{not .State.Running}}", "false"),
    ("{{and .State.Running .Args}}", "[x y]"),
    ("{{or .Empty .State.Pid}}", "7"),
    ('{{printf "%s has %d args" .State.Status (len .Args)}}', "running has 2 args"),
    ("{{range .Mounts}}{{json .}}{{end}}", '{"Destination":"/a","RW":true}{"Destination":"/b","RW":false}'),
    ("{{$pid := .State.Pid}}{{range .Args}}{{.}}{{$pid}}{{end}}", "x7y7"),
    ("{{range .Args}}{{$.State.Pid}}{{end}}", "77"),
    ("{{range .Mounts -}} {{.Destination}} {{- end}}", "/a/b"),
])
def test_control_structures_and_go_functions(template, expected):
    assert render(template, INSPECTED) == expected


def test_undefined_variable_is_an_error():
    with pytest.raises(TemplateError, match="undefined variable"):
        render("{{$nope}}", INSPECTED)
