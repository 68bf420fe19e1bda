"""engine/early.py reads `minirun run`'s command line by hand, before click: what it may guess."""

from __future__ import annotations

from minirun.engine.early import _network, parse, tracing

ENV = {"MINIRUN_ROOT": "/r", "MINIRUN_RUNROOT": "/rr"}


def test_run_with_global_flags_in_every_spelling():
    assert parse(["minirun", "run", "busybox"], {}) == \
        ("/var/lib/minirun", "/run/minirun", ["busybox"])
    assert parse(["minirun", "run", "-d", "busybox"], ENV) == ("/r", "/rr", ["-d", "busybox"])
    assert parse(["m", "--root", "/a", "--runroot=/b", "--debug", "run", "x"], ENV) == \
        ("/a", "/b", ["x"])
    assert parse(["m", "--root=rel", "run", "x"], {})[0].endswith("/rel")  # made absolute


def test_anything_else_starts_nothing():
    for argv in (["m"], ["m", "ps"], ["m", "run", "--help"], ["m", "run", "-h"],
                 ["m", "container", "run", "x"],
                 ["m", "--root"], ["m", "create", "x"]):
        assert parse(argv, ENV) is None, argv


def test_trace_is_a_global_flag_of_run():
    assert parse(["m", "--trace", "run", "x"], ENV) == ("/r", "/rr", ["x"])
    assert tracing(["m", "--trace", "run", "x"], {})
    assert tracing(["m", "--root", "/a", "--trace", "run", "x"], {})
    assert tracing(["m", "run", "x"], {"MINIRUN_TRACE": "1"})
    for argv, env in ((["m", "run", "x"], {}), (["m", "run", "x"], {"MINIRUN_TRACE": "0"}),
                      (["m", "run", "--trace"], {}), (["m", "run", "x", "--trace"], {})):
        assert not tracing(argv, env), (argv, env)


def test_the_network_guess():
    assert _network(["busybox"]) == "bridge"
    assert _network(["--network", "none", "busybox"]) == "none"
    assert _network(["--net=host", "busybox"]) == "host"
    assert _network(["--network=container:db", "busybox"]) == "container:db"
