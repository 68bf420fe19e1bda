"""OCI hooks: run in order with the state on stdin, args and env as given, failures named."""

from __future__ import annotations

import json
import time

import pytest

from minirun.oci import hooks
from minirun.oci.spec import Hook

STATE = json.dumps({"ociVersion": "1.2.0", "id": "c1", "pid": 42, "status": "creating",
                    "bundle": "/b"})


@pytest.fixture
def script(tmp_path):
    """script(body) -> path of an executable #!/bin/sh script."""
    n = [0]

    def make(body: str) -> str:
        n[0] += 1
        p = tmp_path / f"hook{n[0]}.sh"
        p.write_text(f"#!/bin/sh\n{body}\n")
        p.chmod(0o755)
        return str(p)

    return make


def test_hook_reads_state_json_on_stdin(script, tmp_path):
    out = tmp_path / "stdin"
    hooks.run([Hook(script(f"/bin/cat > {out}"))], "prestart", STATE)
    assert json.loads(out.read_text()) == json.loads(STATE)


def test_hook_args_are_passed_after_argv0(script, tmp_path):
    out = tmp_path / "args"
    path = script(f'printf "%s\\n" "$@" > {out}')
    hooks.run([Hook(path, args=[path, "one", "two words"])], "poststart", STATE)
    assert out.read_text() == "one\ntwo words\n"


def test_hook_argv0_is_args0(tmp_path):
    out = tmp_path / "cmdline"
    h = Hook("/bin/sh", args=["my-hook-name", "-c", f"/bin/cat /proc/$$/cmdline > {out}"])
    hooks.run([h], "createRuntime", STATE)
    assert out.read_bytes().split(b"\0")[0] == b"my-hook-name"


def test_without_args_argv0_is_the_path(tmp_path):
    out = tmp_path / "cmdline"
    p = tmp_path / "h.sh"
    p.write_text(f"#!/bin/sh\necho \"$0\" > {out}\n")
    p.chmod(0o755)
    hooks.run([Hook(str(p))], "prestart", STATE)
    assert out.read_text().strip() == str(p)


def test_hook_gets_only_its_own_env(script, tmp_path, monkeypatch):
    monkeypatch.setenv("LEAKED_FROM_RUNTIME", "1")
    out = tmp_path / "env"
    hooks.run([Hook(script(f"/usr/bin/env > {out}"), env=["FOO=bar", "EQ=a=b"])], "prestart", STATE)
    env = out.read_text().splitlines()
    assert "FOO=bar" in env and "EQ=a=b" in env
    assert not any(line.startswith("LEAKED_FROM_RUNTIME=") for line in env)


def test_hooks_run_in_order(script, tmp_path):
    out = tmp_path / "order"
    hooks.run([Hook(script(f"echo first >> {out}")), Hook(script(f"echo second >> {out}"))],
              "prestart", STATE)
    assert out.read_text() == "first\nsecond\n"


def test_failing_hook_raises_naming_phase_and_index_and_stops(script, tmp_path):
    out = tmp_path / "ran"
    bad = script("exit 3")
    with pytest.raises(hooks.HookError) as e:
        hooks.run([Hook(script("true")), Hook(bad), Hook(script(f"touch {out}"))], "createRuntime", STATE)
    assert str(e.value) == f"createRuntime hook #1 ({bad}): exited with status 3"
    assert not out.exists()


def test_warn_only_prints_a_warning_and_continues(script, tmp_path, capfd):
    out = tmp_path / "ran"
    hooks.run([Hook(script("exit 1")), Hook(script(f"touch {out}"))], "poststop", STATE, warn_only=True)
    assert out.exists()
    err = capfd.readouterr().err
    assert "warning: poststop hook #0" in err and "exited with status 1" in err


def test_timeout_kills_the_hook(script):
    start = time.monotonic()
    with pytest.raises(hooks.HookError, match=r"prestart hook #0 .*timed out after 1s"):
        hooks.run([Hook(script("exec /bin/sleep 10"), timeout=1)], "prestart", STATE)
    assert 0.9 < time.monotonic() - start < 3


def test_hook_within_its_timeout_succeeds(script):
    hooks.run([Hook(script("exit 0"), timeout=5)], "prestart", STATE)


def test_hook_may_exit_without_reading_stdin(script):
    big = json.dumps({"id": "c1", "pad": "x" * 300_000})  # larger than a pipe's buffer
    hooks.run([Hook(script("exit 0"))], "prestart", big)


def test_hook_killed_by_a_signal(script):
    with pytest.raises(hooks.HookError, match="killed by signal 9"):
        hooks.run([Hook(script("kill -9 $$"))], "prestart", STATE)


def test_missing_hook_program(tmp_path, capfd):
    with pytest.raises(hooks.HookError, match="exited with status 127"):
        hooks.run([Hook(str(tmp_path / "nope"))], "prestart", STATE)
    assert "No such file or directory" in capfd.readouterr().err


def test_env_entry_without_equals_fails_the_hook_not_the_runtime(script, tmp_path):
    # The forked child must never return into the runtime's code, whatever goes wrong in it.
    out = tmp_path / "ran"
    with pytest.raises(hooks.HookError, match="exited with status 127"):
        hooks.run([Hook(script(f"touch {out}"), env=["NOEQUALS"])], "prestart", STATE)
    assert not out.exists()


def _sigign(status: str) -> int:
    for line in status.splitlines():
        if line.startswith("SigIgn:"):
            return int(line.split()[1], 16)
    raise AssertionError("no SigIgn line")


def test_hook_runs_with_default_sigpipe_and_sigxfsz(script, tmp_path):
    out = tmp_path / "status"
    hooks.run([Hook(script(f"/bin/cat /proc/$$/status > {out}"))], "prestart", STATE)
    ignored = _sigign(out.read_text())
    assert not ignored & (1 << (13 - 1)), "SIGPIPE ignored in the hook"
    assert not ignored & (1 << (25 - 1)), "SIGXFSZ ignored in the hook"
