"""The parent/child line protocol over two pipes."""

from __future__ import annotations

import os

from minirun.oci.channel import Channel


def _child(body) -> int:
    """Fork; the child runs body() and always exits (never returns into pytest)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            body()
            code = 0
        finally:
            os._exit(code)
    return pid


def _wait(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_parent_and_child_exchange_lines_then_eof():
    ch = Channel()

    def child():
        c = ch.as_child()
        c.send("setup")
        c.send("pid 1234")
        assert c.recv() == "ok"
        c.send("error two\nlines")  # a newline inside a message cannot split it
        c.close()

    pid = _child(child)
    p = ch.as_parent()
    try:
        assert p.recv() == "setup"
        assert p.recv() == "pid 1234"
        p.send("ok")
        assert p.recv() == "error two lines"
        assert p.recv() is None  # the child closed its end: EOF
        assert p.recv() is None
    finally:
        p.close()
    assert _wait(pid) == 0


def test_recv_is_none_when_the_child_exits_without_a_word():
    ch = Channel()
    pid = _child(lambda: None)
    p = ch.as_parent()
    assert p.recv() is None
    p.close()
    assert _wait(pid) == 0


def test_lines_arriving_in_one_read_are_split():
    ch = Channel()
    pid = _child(lambda: os.write(ch.as_child().wfd, b"a\nb\nc"))
    p = ch.as_parent()
    assert [p.recv(), p.recv(), p.recv()] == ["a", "b", None]  # an unterminated tail is not a line
    p.close()
    assert _wait(pid) == 0


def test_send_to_a_gone_peer_does_not_raise():
    ch = Channel()
    pid = _child(lambda: ch.as_child().close())
    assert _wait(pid) == 0
    p = ch.as_parent()
    p.send("ok")  # EPIPE is swallowed: the peer's EOF already told the story
    p.close()
    assert p.rfd == p.wfd == -1
    p.close()  # twice is harmless


def test_as_parent_closes_the_child_ends():
    fds_before = set(os.listdir("/proc/self/fd"))
    ch = Channel().as_parent()
    assert len(set(os.listdir("/proc/self/fd")) - fds_before) == 2
    ch.close()
    assert set(os.listdir("/proc/self/fd")) == fds_before
