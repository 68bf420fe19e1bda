"""The base layer (minirun/base/): atomic writes, locks, times, Go durations, names."""

from __future__ import annotations

import fcntl
import os
import threading
import time

import pytest

from minirun.base import bundle_defaults, durations, names, times
from minirun.base.atomicfile import AtomicFile, write_atomic
from minirun.base.filelock import FileLock


# -- atomic writes -------------------------------------------------------------------------------


def test_write_atomic_writes_content_mode_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "state.json"
    write_atomic(str(path), "old")
    write_atomic(str(path), b"new")
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["state.json"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_write_atomic_mode_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(str(tmp_path / "f"), "x", mode=0o666, fsync=True, fsync_dir=True)
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644


def test_a_given_temp_file_gets_exactly_the_mode(tmp_path):
    tmp = tmp_path / "tmp" / "x"
    tmp.parent.mkdir()
    tmp.write_text("")
    os.chmod(tmp, 0o600)
    write_atomic(str(tmp_path / "rec.json"), "{}", mode=0o644, tmp=str(tmp))
    assert (tmp_path / "rec.json").stat().st_mode & 0o777 == 0o644
    assert not tmp.exists()


def test_a_failed_block_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "f"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with AtomicFile(str(path)) as f:
            f.write(b"half")
            raise RuntimeError
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["f"]


def test_errors_name_the_file_not_the_temp(tmp_path):
    target = str(tmp_path / "missing" / "f")
    with pytest.raises(FileNotFoundError) as e:
        write_atomic(target, "x")
    assert e.value.filename == target and target in str(e.value)


def test_concurrent_writers_in_one_process_never_collide(tmp_path):
    path = str(tmp_path / "f")
    errors = []

    def write(n):
        try:
            for _ in range(50):
                write_atomic(path, str(n) * 100)
        except OSError as e:  # pragma: no cover - what the test is about
            errors.append(e)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(open(path).read())) == 1 and os.listdir(tmp_path) == ["f"]


# -- locks -----------------------------------------------------------------------------------------


def _locked_elsewhere(path: str, flags: int) -> bool:
    fd = os.open(path, flags)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def test_lock_is_exclusive_per_directory(tmp_path):
    with FileLock(str(tmp_path), directory=True):
        assert _locked_elsewhere(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    assert not _locked_elsewhere(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)


def test_lock_file_is_made_and_optionally_removed(tmp_path):
    path = str(tmp_path / ".lock")
    with FileLock(path) as fd:
        assert fd >= 0 and _locked_elsewhere(path, os.O_RDWR)
    assert os.path.exists(path) and not _locked_elsewhere(path, os.O_RDWR)
    with FileLock(path, remove=True):
        pass
    assert not os.path.exists(path)


def test_shared_locks_share(tmp_path):
    path = str(tmp_path / "l")
    with FileLock(path, shared=True), FileLock(path, shared=True):
        assert _locked_elsewhere(path, os.O_RDWR)


# -- times ---------------------------------------------------------------------------------------


def test_now_shape():
    t = times.now()
    assert len(t) == len("2024-01-01T00:00:00.000000000Z") and t.endswith("Z") and t[10] == "T"
    assert len(times.now(6)) == len("2024-01-01T00:00:00.000000Z")
    assert abs(times.parse_time(t) - time.time()) < 5


@pytest.mark.parametrize("text, seconds", [
    ("1970-01-01T00:00:00Z", 0.0), ("1970-01-01T00:00:01.5Z", 1.5),
    ("2000-02-29T23:59:59+02:00", 951861599.0), ("2026-12-02T20:31:34.000000001Z", 1796243494.0),
    (times.ZERO_TIME, -62135596800.0),
])
def test_parse_time(text, seconds):
    assert times.parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "yesterday", "2026-12-02", "2026-12-02T20:31:34",
                                  "2026-12-02T20:31:34.5+0200", "2026-1x-02T20:31:34Z"])
def test_parse_time_refuses(text):
    with pytest.raises(ValueError):
        times.parse_time(text)


def test_format_time():
    assert times.format_time(1.5) == "1970-01-01T00:00:01.500000000Z"
    assert times.format_time(0, digits=6) == "1970-01-01T00:00:00.000000Z"
    assert times.format_time(0, digits=0) == "1970-01-01T00:00:00Z"


# -- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, ns", [
    ("1h2m3s4ms", 3_723_004_000_000), ("1.5h", 5_400_000_000_000), (".5s", 500_000_000),
    ("1.s", 1_000_000_000), ("-9223372036854775808ns", -2**63), ("0", 0), ("+0", 0),
])
def test_parse_duration(text, ns):
    assert durations.parse_duration(text) == ns


@pytest.mark.parametrize("text, message", [
    ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
    ("1\u00e9", 'time: unknown unit "\\xc3\\xa9" in duration "1\\xc3\\xa9"'),
    ('1"', 'time: unknown unit "\\"" in duration "1\\""'),
])
def test_parse_duration_errors_quote_as_go_does(text, message):
    with pytest.raises(ValueError) as e:
        durations.parse_duration(text)
    assert str(e.value) == message


# -- names -----------------------------------------------------------------------------------------


def test_names_and_ids():
    assert names.valid_name("db1") and not names.valid_name("a") and not names.valid_name("-x")
    assert not names.valid_name("café") and not names.valid_name("a/b")
    assert names.is_hex_id("a" * 64) and not names.is_hex_id("A" * 64)
    assert not names.is_hex_id("a" * 63) and names.is_hex_id("ab", length=2)
    cid = names.new_id()
    assert names.is_hex_id(cid) and not cid[:12].isdigit()


# -- bundle defaults -------------------------------------------------------------------------------


def test_default_mounts_are_fresh_and_configurable():
    a, b = bundle_defaults.default_mounts(), bundle_defaults.default_mounts()
    assert a == b and a is not b and a[0] is not b[0]
    assert "options" not in a[0] and "ro" in a[5]["options"]
    docker = bundle_defaults.default_mounts(proc_options=("nosuid",), sys_readonly=False)
    assert docker[0]["options"] == ["nosuid"] and "ro" not in docker[5]["options"]
