"""engine.attach: the framed stream between a monitor and its attached CLIs."""

from __future__ import annotations

import random

import pytest

from minirun.engine import attach
from minirun.engine.attach import Reader, frame

FRAMES = [(attach.STDOUT, b"hello\n"), (attach.STDERR, b"oops\n"), (attach.START, b""),
          (attach.RESIZE, b"24 80"), (attach.STDIN, bytes(range(256)) * 300),
          (attach.EXIT, b"0")]


def test_frame_header_is_type_three_zero_bytes_and_big_endian_length():
    assert frame(attach.STDOUT, b"hi") == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"
    assert frame(attach.START) == b"\x07" + b"\x00" * 7


def test_reader_splits_a_whole_stream_into_frames():
    assert Reader().feed(b"".join(frame(k, p) for k, p in FRAMES)) == FRAMES


@pytest.mark.parametrize("seed", range(20))
def test_frames_survive_arbitrary_chunk_boundaries(seed):
    data = b"".join(frame(k, p) for k, p in FRAMES)
    rng = random.Random(seed)
    r, got, i = Reader(), [], 0
    while i < len(data):
        n = rng.choice([1, 2, 3, 7, 8, 9, 100, 4096])
        got += r.feed(data[i:i + n])
        i += n
    assert got == FRAMES and r.buf == b""


def test_reader_returns_nothing_until_a_frame_is_complete():
    r = Reader()
    data = frame(attach.STDOUT, b"abc")
    assert r.feed(data[:5]) == []
    assert r.feed(data[5:-1]) == []
    assert r.feed(data[-1:]) == [(attach.STDOUT, b"abc")]


def test_byte_by_byte_feeding():
    data = frame(attach.EXIT, b"137") + frame(attach.STDOUT, b"")
    r = Reader()
    got = [f for i in range(len(data)) for f in r.feed(data[i:i + 1])]
    assert got == [(attach.EXIT, b"137"), (attach.STDOUT, b"")]


def test_attach_frames_survive_any_chunking():
    data = attach.frame(attach.STDOUT, b"hello") + attach.frame(attach.EXIT, b"3") + \
        attach.frame(attach.RESIZE, b"24 80")
    for cut in range(1, len(data)):
        r = attach.Reader()
        got = r.feed(data[:cut]) + r.feed(data[cut:])
        assert got == [(attach.STDOUT, b"hello"), (attach.EXIT, b"3"), (attach.RESIZE, b"24 80")]
