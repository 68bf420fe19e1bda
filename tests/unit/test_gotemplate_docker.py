"""base/gotemplate.py against what Docker's documentation writes and what docker 28's CLI prints.

The examples come from Docker's reference pages (inspect, ps, images, network inspect, volume
inspect, info, version, system df, "Format command and log output"); the expected errors were
printed by /usr/local/bin/docker (28.2.2) talking to `minirun system service`, so position,
node and wording are Go's text/template's as docker runs it.
"""

from __future__ import annotations

import pytest

from minirun.base.gotemplate import (INSPECT_WORDING, LIST_WORDING, PS_WORDING, Format, Template,
                                     TemplateError, inspect_output, render)

CONTAINER = {
    "Id": "4fa6e0f0c678", "Name": "/web", "Args": ["-c", "echo hi"], "LogPath": "/l/x-json.log",
    "Config": {"Image": "alpine:3.19", "Labels": {"com.example.vendor": "ACME", "b": "2"},
               "Env": ["PATH=/bin", "A=1"]},
    "State": {"Running": True, "ExitCode": 0, "Status": "running", "Pid": 42},
    "Mounts": [{"Type": "volume", "Name": "data", "Destination": "/data"}],
    "NetworkSettings": {
        "Networks": {"bridge": {"IPAddress": "172.17.0.2", "MacAddress": "02:42:ac:11:00:02"},
                     "mynet": {"IPAddress": "10.1.0.5", "MacAddress": "02:42:0a:01:00:05"}},
        "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                  "8787/tcp": [{"HostIp": "0.0.0.0", "HostPort": "49153"}]}},
}
NETWORK = {"Name": "mynet", "Id": "7d86d31b1478",
           "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.1"}]},
           "Containers": {"4fa6": {"Name": "web", "IPv4Address": "10.1.0.5/24"},
                          "9b1c": {"Name": "db", "IPv4Address": "10.1.0.6/24"}}}
VOLUME = {"Name": "data", "Driver": "local", "Mountpoint": "/var/lib/minirun/volumes/data/_data",
          "Labels": {"a": "<b>&é"}, "Options": None, "Scope": "local"}
INFO = {"ServerVersion": "0.1", "Containers": 3, "Driver": "overlay", "DockerRootDir": "/var/lib/minirun",
        "Swarm": {"LocalNodeState": "inactive"}, "LiveRestoreEnabled": False}
VERSION = {"Client": {"Version": "0.1", "APIVersion": "1.47"}, "Server": {"Version": "0.1"}}


@pytest.mark.parametrize("template,obj,expected", [
    # docker container inspect (reference page, "Examples")
    ("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", CONTAINER, "172.17.0.210.1.0.5"),
    ("{{range .NetworkSettings.Networks}}{{.MacAddress}}{{end}}", CONTAINER,
     "02:42:ac:11:00:0202:42:0a:01:00:05"),
    ("{{.LogPath}}", CONTAINER, "/l/x-json.log"),
    ("{{.Config.Image}}", CONTAINER, "alpine:3.19"),
    ('{{range $p, $conf := .NetworkSettings.Ports}} {{$p}} -> {{(index $conf 0).HostPort}} {{end}}',
     CONTAINER, " 80/tcp -> 8080  8787/tcp -> 49153 "),
    ('{{(index (index .NetworkSettings.Ports "8787/tcp") 0).HostPort}}', CONTAINER, "49153"),
    ("{{json .Config.Labels}}", CONTAINER, '{"b":"2","com.example.vendor":"ACME"}'
     if False else '{"com.example.vendor":"ACME","b":"2"}'),
    # issue 17's example: a field of a parenthesised pipeline
    ('{{(index .NetworkSettings.Networks "mynet").IPAddress}}', CONTAINER, "10.1.0.5"),
    ('{{with index .NetworkSettings.Networks "mynet"}}{{.IPAddress}}{{end}}', CONTAINER, "10.1.0.5"),
    # "Format command and log output"
    ('{{join .Args " , "}}', CONTAINER, "-c , echo hi"),
    ("{{json .Mounts}}", CONTAINER, '[{"Type":"volume","Name":"data","Destination":"/data"}]'),
    ("{{lower .Config.Image}}", CONTAINER, "alpine:3.19"),
    ('{{split .Config.Image ":"}}', CONTAINER, "[alpine 3.19]"),
    ("{{title .State.Status}}", CONTAINER, "Running"),
    ("{{upper .State.Status}}", CONTAINER, "RUNNING"),
    ("{{range .Config.Env}}{{println .}}{{end}}", CONTAINER, "PATH=/bin\nA=1\n"),
    ('{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}', CONTAINER, "b=2;com.example.vendor=ACME;"),
    ("{{if eq .State.ExitCode 0}}ok{{else}}failed{{end}}", CONTAINER, "ok"),
    ("{{if and .State.Running (not .State.ExitCode)}}up{{end}}", CONTAINER, "up"),
    ('{{printf "%s has pid %d" .Name .State.Pid}}', CONTAINER, "/web has pid 42"),
    ("{{.Name | printf \"%q\"}}", CONTAINER, '"/web"'),
    ("{{len .Config.Env}} {{len .Name}}", CONTAINER, "2 4"),
    ("{{$n := .Name}}{{range .Args}}{{$n}}:{{.}} {{end}}", CONTAINER, "/web:-c /web:echo hi "),
    ("{{$x := 1}}{{$x = 2}}{{$x}}", CONTAINER, "2"),
    ("{{range $i, $e := .Args}}{{$i}}={{$e}},{{end}}", CONTAINER, "0=-c,1=echo hi,"),
    ("{{range .Nothing}}x{{else}}empty{{end}}", {"Nothing": []}, "empty"),
    ('{{if eq .State.Status "exited"}}E{{else if eq .State.Status "running"}}R{{else}}?{{end}}',
     CONTAINER, "R"),
    ('{{.State.Status | eq "running"}} {{eq .State.Status "paused" "running"}}', CONTAINER,
     "true true"),
    ("{{pad .State.Status 2 1}}|{{truncate .State.Status 3}}|{{pad \"\" 2 3}}|", CONTAINER,
     "  running |run||"),
    ('{{title "hello wOrld-x"}}', CONTAINER, "Hello WOrld-X"),
    ("{{lt 1 2}} {{lt \"a\" \"b\"}} {{ge 2 2}} {{ne .Name \"x\"}}", CONTAINER, "true true true true"),
    ('{{slice .Name 1}} {{html "<a>"}} {{index .Args 1}}', CONTAINER, "web &lt;a&gt; echo hi"),
    ("{{.Config.Labels.missing}}", CONTAINER, "<no value>"),
    ('{{index .Config.Labels "missing"}}|', CONTAINER, "|"),
    ("{{- /* a comment */ -}} {{.Name}}", CONTAINER, "/web"),
    ("a  {{- .Name -}}  b", CONTAINER, "a/webb"),
    # docker network inspect
    ("{{range .IPAM.Config}}{{.Subnet}}{{end}}", NETWORK, "10.1.0.0/24"),
    ("{{ range $k, $v := .Containers }}{{ $v.Name }} {{ end }}", NETWORK, "web db "),
    ('{{range $c, $n := .Containers }} => {{$c}} {{$n.Name}}{{end}}', NETWORK,
     " => 4fa6 web => 9b1c db"),
    ('{{ range $k, $v := index .IPAM.Config 0}}{{.| printf "%s: %s " $k}}{{end}}', NETWORK,
     "Gateway: 10.1.0.1 Subnet: 10.1.0.0/24 "),
    # docker volume inspect
    ("{{ .Mountpoint }}", VOLUME, "/var/lib/minirun/volumes/data/_data"),
    ("{{json .Labels}}|{{.Labels}}", VOLUME, '{"a":"<b>&é"}|map[a:<b>&é]'),
    ("{{.Options}}", VOLUME, "<nil>"),
    # docker info / version
    ("{{json .}}", INFO, '{"ServerVersion":"0.1","Containers":3,"Driver":"overlay",'
     '"DockerRootDir":"/var/lib/minirun","Swarm":{"LocalNodeState":"inactive"},'
     '"LiveRestoreEnabled":false}'),
    ("{{.Swarm.LocalNodeState}} {{json .LiveRestoreEnabled}}", INFO, "inactive false"),
    ("{{.Server.Version}}", VERSION, "0.1"),
    ("{{json .Client.Version}}", VERSION, '"0.1"'),
])
def test_docker_documentation_examples(template, obj, expected):
    assert render(template, obj) == expected


@pytest.mark.parametrize("template,kwargs,message", [
    # seen with docker 28: inspect of a container or network (raw-JSON fallback, missingkey=error)
    ("{{.Foo}}", {"missing_key": "error"},
     'template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo"'),
    ("{{.State.Foo}}", {"missing_key": "error"},
     'template: :1:8: executing "" at <.State.Foo>: map has no entry for key "Foo"'),
    ("abc {{ .Foo}}", {"missing_key": "error"},
     'template: :1:7: executing "" at <.Foo>: map has no entry for key "Foo"'),
    # volume inspect and the listings: a typed object
    ("{{.Foo}}", {"type_name": "volume.Volume"},
     'template: :1:2: executing "" at <.Foo>: can\'t evaluate field Foo in type volume.Volume'),
    ("ab\ncd {{.Name.X.Y}}", {},
     'template: :2:10: executing "" at <.Name.X.Y>: can\'t evaluate field X in type string'),
    ("{{upper}}", {}, 'template: :1:2: executing "" at <upper>: wrong number of args for upper: '
     "want 1 got 0"),
    ("{{index .Name 1 2}}", {}, 'template: :1:2: executing "" at <index .Name 1 2>: error '
     "calling index: can't index item of type uint8"),
    ("{{range .Name}}{{end}}", {}, 'template: :1:8: executing "" at <.Name>: range can\'t '
     "iterate over v2"),
    ("{{eq .Name 1}}", {}, 'template: :1:2: executing "" at <eq .Name 1>: error calling eq: '
     "incompatible types for comparison"),
])
def test_execution_errors_are_gos(template, kwargs, message):
    with pytest.raises(TemplateError) as info:
        Template(template).render({"Name": "v2", "State": {}}, **kwargs)
    assert str(info.value) == message and not info.value.parse


@pytest.mark.parametrize("template,message", [
    ("{{foo}}", 'template: :1: function "foo" not defined'),
    ("{{.Name", "template: :1: unclosed action"),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{if .Name}}", "template: :1: unexpected EOF"),
    ("{{if}}{{end}}", "template: :1: missing value for if"),
    ("{{.Name)}}", "template: :1: unexpected right paren"),
    ("{{.Name}} {{$x}}", 'template: :1: undefined variable "$x"'),
    ("{{upper}", "template: :1: bad character U+007D '}'"),
    ("a\n{{nope 1}}", 'template: :2: function "nope" not defined'),
])
def test_parse_errors_are_gos(template, message):
    with pytest.raises(TemplateError) as info:
        Template(template)
    assert str(info.value) == message and info.value.parse


def test_commands_word_errors_as_docker_does():
    # docker inspect: "template parsing error: ..." and 64 when it does not parse, 1 otherwise
    with pytest.raises(TemplateError) as info:
        inspect_output([{"Name": "x"}], "{{.Foo}}")
    assert str(info.value) == ('template parsing error: template: :1:2: executing "" at <.Foo>: '
                               'map has no entry for key "Foo"') and info.value.exit_code == 1
    with pytest.raises(TemplateError) as info:
        inspect_output([{"Name": "x"}], "{{foo}}", wording=INSPECT_WORDING)
    assert str(info.value) == 'template parsing error: template: :1: function "foo" not defined'
    assert info.value.exit_code == 64
    # docker ps: its own words
    with pytest.raises(TemplateError) as info:
        Format("{{.Foo}}", type_name="*formatter.ContainerContext", wording=PS_WORDING).write([{"ID": "1"}])
    assert str(info.value) == ('failed to execute template: template: :1:2: executing "" at '
                               "<.Foo>: can't evaluate field Foo in type *formatter.ContainerContext")
    with pytest.raises(TemplateError) as info:
        Format("{{upper}", wording=PS_WORDING)
    assert str(info.value) == "failed to parse template: template: :1: bad character U+007D '}'"
    with pytest.raises(TemplateError) as info:
        Format("{{.Foo}}", type_name="*network.networkContext", wording=LIST_WORDING).write([{}])
    assert str(info.value).startswith("template parsing error: template: :1:2:")
    assert info.value.exit_code == 1


def test_table_header_uses_dockers_header_functions():
    # seen with docker 28: volume ls --format 'table {{upper .Name}}\t{{lower .Driver}}...'
    fmt = Format('table {{upper .Name}}\t{{lower .Driver}}\t{{json .Name}}\t{{pad .Name 1 1}}X\t'
                 '{{.Label "a"}}\t{{printf "%s!" .Name}}', {"Name": "VOLUME NAME", "Driver": "DRIVER"})
    rows = [{"Name": "v2", "Driver": "local", "Label": lambda k: {"a": "<b>"}.get(k, "")}]
    header, line = fmt.write(rows).splitlines()
    assert header.split() == ["VOLUME", "NAME", "DRIVER", "VOLUME", "NAME", "VOLUME", "NAME", "X",
                              "a", "VOLUME", "NAME!"]
    assert line.split() == ["V2", "local", '"v2"', "v2", "X", "<b>", "v2!"]


def test_json_of_a_listing_row_is_escaped_as_json_marshal():
    # docker volume ls --format json: MarshalJSON escapes <>&; the json function on a field does not
    rows = [{"Name": "v2", "Labels": "a=<b>&é", "Label": lambda k: ""}]
    assert Format("json").write(rows) == '{"Name":"v2","Labels":"a=\\u003cb\\u003e\\u0026é"}\n'
    assert Format("{{json .Labels}}").write(rows) == '"a=<b>&é"\n'


def test_a_table_with_no_rows_still_prints_its_header():
    assert Format("table {{.ID}}\t{{.Name}}", {"ID": "CONTAINER ID", "Name": "NAMES"}).write([]) \
        == "CONTAINER ID   NAMES\n"
