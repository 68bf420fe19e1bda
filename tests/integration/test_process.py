"""config.json's `process`: args, env, cwd, user, umask, rlimits, capabilities, noNewPrivileges,
oomScoreAdj, HOME, signal dispositions and file descriptors.

Each test looks from inside (the container's program prints what it has) and, where runc has an
opinion, runs the same bundle under runc and requires the same answer.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import run

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from minirun.kernel.capabilities import NAMES  # noqa: E402

# Prints the lines of the shell's *own* /proc/self/status using builtins only: an exec'd
# `grep` would show its own credentials, which execve() has already transformed.
STATUS = ("while read -r k v; do case $k in Cap*|NoNewPrivs:|Sig[IBC]*|Uid:|Gid:|Groups:) "
          "echo \"$k $v\";; esac; done < /proc/self/status")


def mask(*names: str) -> str:
    return f"{sum(1 << NAMES[n] for n in names):016x}"


def status_of(out: str) -> dict[str, str]:
    return {k.rstrip(":"): v for k, _, v in (ln.partition(" ") for ln in out.splitlines())}


def both(oci, runc, b: str, cid: str) -> tuple[str, str]:
    """Run the same bundle under minirun-oci and runc; both must succeed."""
    return run(oci, b, cid).stdout, run(runc, b, cid + "-runc").stdout


DEFAULT_CAPS = mask("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
CUSTOM_CAPS = {
    "bounding": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID",
                 "CAP_SETGID", "CAP_SYS_CHROOT"],
    "effective": ["CAP_CHOWN", "CAP_KILL"],
    "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID"],
    "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
    # CAP_CHOWN is not inheritable, so it cannot be ambient: skipped (as runc does), no error.
    "ambient": ["CAP_NET_RAW", "CAP_CHOWN"],
}
MINI = {"uid": 1000, "gid": 1000, "additionalGids": [2000]}


# --- args, env, cwd ----------------------------------------------------------------------------


def test_args_are_passed_verbatim(oci, bundle, cid):
    b = bundle(args=["sh", "-c", 'printf "[%s]" "$0" "$@"', "zero", "a b", "", "c'd\"e"])
    assert run(oci, b, cid).stdout == "[zero][a b][][c'd\"e]"


def test_env_and_path_lookup(oci, bundle, cid):
    # `env` is found through PATH (the second entry): the runtime resolves args[0] like execvp.
    b = bundle(args=["env"], env=["PATH=/no/such/dir:/bin", "FOO=bar baz", "EMPTY=", "X=a=b"])
    lines = run(oci, b, cid).stdout.splitlines()
    assert sorted(lines) == sorted(["PATH=/no/such/dir:/bin", "FOO=bar baz", "EMPTY=", "X=a=b",
                                    "HOME=/root"])


def test_program_not_on_path_fails_create(oci, bundle, cid):
    r = run(oci, bundle(args=["env"], env=["PATH=/no/such/dir"]), cid, ok=False)
    assert r.returncode != 0
    assert "env" in r.stderr and "not found" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (oci.root / cid).exists()


def test_cwd(oci, bundle, cid):
    assert run(oci, bundle(args=["pwd"], cwd="/home/mini"), cid).stdout == "/home/mini\n"


def test_missing_cwd_is_created(oci, bundle, cid):
    b = bundle(args=["pwd"], cwd="/new/sub/dir", own_rootfs=True)
    assert run(oci, b, cid).stdout == "/new/sub/dir\n"
    assert (Path(b) / "rootfs/new/sub/dir").is_dir()


# --- user, umask, HOME -------------------------------------------------------------------------


def test_user_and_groups(oci, runc, bundle, cid):
    b = bundle(args=["sh", "-c", "id; " + STATUS], user=MINI)
    mine, theirs = both(oci, runc, b, cid)
    assert mine.splitlines()[0] == "uid=1000(mini) gid=1000(mini) groups=2000(extra)"
    st = status_of("\n".join(mine.splitlines()[1:]))
    assert st["Uid"].split() == ["1000"] * 4
    assert st["Gid"].split() == ["1000"] * 4
    assert st["Groups"].split() == ["2000"]
    assert mine == theirs


def test_root_has_no_supplementary_groups(oci, bundle, cid):
    assert run(oci, bundle(args=["id"]), cid).stdout == "uid=0(root) gid=0(root)\n"


@pytest.mark.parametrize("umask,expected", [(None, "0022"), (0o077, "0077"), (0, "0000")])
def test_umask(oci, bundle, cid, umask, expected):
    user = {"uid": 0, "gid": 0}
    if umask is not None:
        user["umask"] = umask
    assert run(oci, bundle(args=["sh", "-c", "umask"], user=user), cid).stdout == expected + "\n"


@pytest.mark.parametrize("uid,env,expected", [
    (0, [], "/root"),
    (1000, [], "/home/mini"),
    (65534, [], "/nonexistent"),
    (4242, [], "/"),  # not in /etc/passwd
    (1000, ["HOME=/custom"], "/custom"),
])
def test_home(oci, runc, bundle, cid, uid, env, expected):
    b = bundle(args=["sh", "-c", 'echo "$HOME"'], env=["PATH=/bin"] + env,
               user={"uid": uid, "gid": uid})
    mine, theirs = both(oci, runc, b, cid)
    assert mine == f"{expected}\n"
    assert mine == theirs


# --- rlimits, oomScoreAdj ----------------------------------------------------------------------


def test_rlimits(oci, bundle, cid):
    b = bundle(args=["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c; ulimit -Hc"],
               rlimits=[{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
                        {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096}])
    # busybox reports RLIMIT_CORE in 512-byte blocks
    assert run(oci, b, cid).stdout == "100\n200\n0\n8\n"


def test_rlimit_above_the_hosts_hard_limit_fails(oci, bundle, cid):
    """Without CAP_SYS_RESOURCE nothing can raise RLIMIT_NOFILE above 20000 here."""
    hard = int(subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True).stdout)
    b = bundle(args=["true"], rlimits=[{"type": "RLIMIT_NOFILE", "soft": hard + 1,
                                        "hard": hard + 1}])
    r = run(oci, b, cid, ok=False)
    if r.returncode == 0:
        pytest.skip("this machine lets us raise RLIMIT_NOFILE (CAP_SYS_RESOURCE is held)")
    msg = r.stderr.strip()
    assert "RLIMIT_NOFILE" in msg or "setrlimit" in msg, msg
    assert "\n" not in msg and "Traceback" not in msg
    assert not (oci.root / cid).exists()


def test_oom_score_adj(oci, bundle, cid):
    b = bundle(args=["cat", "/proc/self/oom_score_adj"], oomScoreAdj=500)
    assert run(oci, b, cid).stdout == "500\n"


def test_oom_score_adj_unset_is_inherited(oci, bundle, cid):
    mine = Path("/proc/self/oom_score_adj").read_text()
    assert run(oci, bundle(args=["cat", "/proc/self/oom_score_adj"]), cid).stdout == mine


# --- capabilities and noNewPrivileges ----------------------------------------------------------


def test_default_capabilities(oci, bundle, cid):
    st = status_of(run(oci, bundle(args=["sh", "-c", STATUS]), cid).stdout)
    assert st["CapBnd"] == st["CapPrm"] == st["CapEff"] == DEFAULT_CAPS
    assert st["CapInh"] == st["CapAmb"] == "0" * 16
    assert st["NoNewPrivs"] == "1"


def test_custom_capabilities_as_root(oci, bundle, cid):
    st = status_of(run(oci, bundle(args=["sh", "-c", STATUS], capabilities=CUSTOM_CAPS),
                       cid).stdout)
    assert st["CapBnd"] == mask(*CUSTOM_CAPS["bounding"])
    assert st["CapInh"] == mask("CAP_KILL", "CAP_NET_RAW")
    assert st["CapAmb"] == mask("CAP_NET_RAW")
    # execve() as uid 0 gives a program permitted = bounding | inheritable (capabilities(7)),
    # but no_new_privs (the default spec's noNewPrivileges) caps that at the old permitted set.
    assert st["CapPrm"] == st["CapEff"] == mask(*CUSTOM_CAPS["permitted"])


def test_custom_capabilities_as_non_root(oci, bundle, cid):
    b = bundle(args=["sh", "-c", STATUS], capabilities=CUSTOM_CAPS, user=MINI)
    st = status_of(run(oci, b, cid).stdout)
    assert st["CapBnd"] == mask(*CUSTOM_CAPS["bounding"])
    assert st["CapInh"] == mask("CAP_KILL", "CAP_NET_RAW")
    # execve() as a non-root user of a program without file capabilities: only ambient survive
    assert st["CapAmb"] == st["CapPrm"] == st["CapEff"] == mask("CAP_NET_RAW")


def test_empty_capabilities(oci, bundle, cid):
    b = bundle(args=["sh", "-c", STATUS], capabilities={})
    st = status_of(run(oci, b, cid).stdout)
    for k in ("CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"):
        assert st[k] == "0" * 16, k


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(oci, bundle, cid, nnp):
    st = status_of(run(oci, bundle(args=["sh", "-c", STATUS], noNewPrivileges=nnp), cid).stdout)
    assert st["NoNewPrivs"] == ("1" if nnp else "0")


COMPARED = {
    "default": {},
    "custom-caps": {"capabilities": CUSTOM_CAPS},
    "non-root-with-caps": {"capabilities": CUSTOM_CAPS, "user": MINI},
    "non-root-default-caps": {"user": {"uid": 1000, "gid": 1000}},
    "no-new-privs-false": {"noNewPrivileges": False},
    "custom-caps-no-new-privs-false": {"capabilities": CUSTOM_CAPS, "noNewPrivileges": False},
    "no-caps-non-root": {"capabilities": {}, "user": MINI, "noNewPrivileges": False},
}


@pytest.mark.parametrize("name", COMPARED, ids=list(COMPARED))
def test_credentials_match_runc(oci, runc, bundle, cid, name):
    b = bundle(args=["sh", "-c", STATUS], **COMPARED[name])
    mine, theirs = both(oci, runc, b, cid)
    assert "CapEff" in mine
    assert mine == theirs


# --- signals and file descriptors ------------------------------------------------------------


def test_signal_dispositions_are_default(oci, runc, bundle, cid):
    """Python (the runtime) ignores SIGPIPE and SIGXFSZ: the program must not inherit that."""
    b = bundle(args=["cat", "/proc/self/status"])  # cat is the container's process itself
    mine, theirs = both(oci, runc, b, cid)
    st = {ln.split(":")[0]: ln.split()[1] for ln in mine.splitlines() if ln.startswith("Sig")}
    assert st["SigIgn"] == st["SigBlk"] == st["SigCgt"] == "0" * 16
    assert [ln for ln in mine.splitlines() if ln.startswith(("SigIgn", "SigBlk", "SigCgt"))] == \
        [ln for ln in theirs.splitlines() if ln.startswith(("SigIgn", "SigBlk", "SigCgt"))]


def test_sigpipe_kills_a_writer(oci, bundle, cid):
    # With SIGPIPE ignored, `yes` would get EPIPE and exit 1 instead of dying by the signal.
    b = bundle(args=["sh", "-c", "(yes; echo status=$? >&2) | true"])
    r = run(oci, b, cid)
    assert "status=141" in r.stderr, r.stderr


def _with_extra_fds(rt, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the runtime with host files open as fd 3 and fd 4 (like a caller leaking fds)."""
    f3, f4 = tmp_path / "fd3.txt", tmp_path / "fd4.txt"
    f3.write_text("content of fd 3\n")
    f4.write_text("content of fd 4\n")
    if args and args[0] in ("create", "run"):
        rt.ids.add(args[-1])
    # Files, not pipes: a created container holds create's stdio, so EOF would wait for it.
    out, err = tmp_path / f"{args[0]}.out", tmp_path / f"{args[0]}.err"
    with open(out, "w") as o, open(err, "w") as e:
        r = subprocess.run(["bash", "-c", 'exec 3<"$0" 4<"$1"; shift; exec "$@"', str(f3),
                            str(f4), rt.binary, "--root", str(rt.root), *args],
                           stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=30)
    return subprocess.CompletedProcess(r.args, r.returncode, out.read_text(), err.read_text())


def test_only_stdio_is_open(oci, runc, bundle, cid, tmp_path):
    b = bundle(args=["ls", "/proc/self/fd"])  # plus the directory fd `ls` opens itself
    mine = _with_extra_fds(oci, tmp_path, "run", "--bundle", b, cid)
    theirs = _with_extra_fds(runc, tmp_path, "run", "--bundle", b, cid + "-runc")
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout.split() == ["0", "1", "2", "3"]
    assert mine.stdout == theirs.stdout


def test_preserve_fds(oci, runc, bundle, cid, tmp_path):
    b = bundle(args=["sh", "-c", "cat <&3; ls /proc/$$/fd | tr '\\n' ' '"])
    mine = _with_extra_fds(oci, tmp_path, "run", "--preserve-fds", "1", "--bundle", b, cid)
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout == "content of fd 3\n0 1 2 3 "  # fd 4 was not asked for
    theirs = _with_extra_fds(runc, tmp_path, "run", "--preserve-fds", "1", "--bundle", b,
                             cid + "-runc")
    # runc 1.1.5 now and then leaks one more fd (4) into the container (3 runs in 40 here):
    # compare what both must agree on, fds 0-3.
    assert theirs.stdout.startswith("content of fd 3\n0 1 2 3 ")


def test_preserve_fds_with_create(oci, bundle, cid, tmp_path):
    """The fd is held by the created container until start, then read by the program."""
    shared = tmp_path / "shared"
    shared.mkdir()

    def edit(cfg: dict) -> None:
        cfg["mounts"].append({"destination": "/tmp", "type": "bind", "source": str(shared),
                              "options": ["rbind", "rw"]})

    b = bundle(args=["sh", "-c", "cat <&3 > /tmp/out.tmp; readlink /proc/$$/fd/3 >> /tmp/out.tmp;"
                     " mv /tmp/out.tmp /tmp/out"], edit=edit)
    r = _with_extra_fds(oci, tmp_path, "create", "--preserve-fds", "1", "--bundle", b, cid)
    assert r.returncode == 0, r.stderr
    (tmp_path / "fd3.txt").unlink()  # the open fd keeps the content reachable
    oci("start", cid, check=True)
    out = shared / "out"
    deadline = time.monotonic() + 5
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert out.read_text() == f"content of fd 3\n{tmp_path}/fd3.txt (deleted)\n"
