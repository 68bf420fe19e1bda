"""`minirun build` and `commit`: Dockerfiles into images, seen from outside (the image's config,
history and layers, what `Using cache` says) and from inside (what the built image runs).

Every build context is a temp directory; the images live in the module's --root (mr fixture)
on top of the offline busybox image.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers import write_files


def build(mr, ctx: Path, *flags: str, ok: bool = True):
    r = mr("build", *flags, str(ctx), timeout=180)
    if ok:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def image_id(r) -> str:
    m = re.search(r"Successfully built ([0-9a-f]{12})", r.stdout)
    assert m, r.stdout
    return m.group(1)


def config(mr, ref: str) -> dict:
    return json.loads(mr.ok("image", "inspect", ref))[0]["Config"]


def cached_steps(r) -> list[int]:
    """The step numbers the build took from the cache."""
    out, step, hits = r.stdout.splitlines(), 0, []
    for line in out:
        m = re.match(r"Step (\d+)/\d+ :", line)
        if m:
            step = int(m.group(1))
        elif line.strip() == "---> Using cache":
            hits.append(step)
    return hits


# --- a multi-stage build into scratch -----------------------------------------------------------


def test_multi_stage_into_scratch(mr, tmp_path):
    ctx = write_files(tmp_path, {"Dockerfile": """
        FROM busybox AS builder
        WORKDIR /src
        COPY greet.sh .
        RUN mkdir /out && cp /bin/busybox /out/busybox && sed 's/NAME/world/' greet.sh > /out/msg
        FROM scratch
        COPY --from=builder /out/ /
        ENTRYPOINT ["/busybox", "cat"]
        CMD ["/msg"]
        """, "greet.sh": "hello NAME\n"})
    r = build(mr, ctx, "-t", "greet:1")
    assert "Successfully tagged greet:1" in r.stdout
    assert mr.ok("run", "--rm", "--network", "none", "greet:1") == "hello world\n"
    info = json.loads(mr.ok("image", "inspect", "greet:1"))[0]
    assert len(info["RootFS"]["Layers"]) == 1  # scratch + one COPY: the builder stage is gone
    files = mr.ok("run", "--rm", "--network", "none", "--entrypoint", "/busybox", "greet:1",
                  "ls", "/").split()
    assert "bin" not in files and {"busybox", "msg"} <= set(files)


# --- the cache ------------------------------------------------------------------------------------

CACHED = {"Dockerfile": """
    FROM busybox
    ENV GREETING=hi
    RUN echo built > /built
    COPY a.txt /app/
    RUN cat /app/a.txt > /app/copy
    COPY b.txt /app/
    CMD ["cat", "/app/copy"]
    """, "a.txt": "A\n", "b.txt": "B\n"}


def test_rebuild_comes_entirely_from_the_cache(mr, tmp_path):
    ctx = write_files(tmp_path, CACHED)
    first = build(mr, ctx, "-t", "cached:1")
    assert cached_steps(first) == [] or cached_steps(first) == [2, 3, 4, 5, 6, 7]
    second = build(mr, ctx, "-t", "cached:1")
    assert cached_steps(second) == [2, 3, 4, 5, 6, 7]  # everything after FROM
    assert image_id(second) == image_id(first)
    assert "Running in" not in second.stdout
    third = build(mr, ctx, "--no-cache", "-t", "cached:2")
    assert cached_steps(third) == [] and image_id(third) != image_id(first)


def test_a_changed_copy_source_reruns_only_what_follows(mr, tmp_path):
    ctx = write_files(tmp_path, CACHED)
    build(mr, ctx, "-t", "inval:1")
    (ctx / "a.txt").write_text("A changed\n")
    r = build(mr, ctx, "-t", "inval:1")
    assert cached_steps(r) == [2, 3]  # ENV and the first RUN; COPY a.txt and after: again
    assert mr.ok("run", "--rm", "--network", "none", "inval:1") == "A changed\n"
    (ctx / "b.txt").write_text("B changed\n")
    r = build(mr, ctx, "-t", "inval:1")
    assert cached_steps(r) == [2, 3, 4, 5]
    (ctx / "a.txt").touch()  # a new mtime, the same content: still cached
    assert cached_steps(build(mr, ctx, "-t", "inval:1")) == [2, 3, 4, 5, 6, 7]


def test_dockerignore(mr, tmp_path):
    ctx = write_files(tmp_path, {"Dockerfile": """
        FROM busybox
        COPY . /app
        CMD ["find", "/app", "-type", "f"]
        """, ".dockerignore": "*.log\nsecret/\n!secret/public.txt\n**/tmp-*\n",
        "keep.txt": "k", "debug.log": "d", "secret/key": "s", "secret/public.txt": "p",
        "sub/tmp-1": "t", "sub/real": "r"})
    build(mr, ctx, "-t", "ign:1")
    files = sorted(mr.ok("run", "--rm", "--network", "none", "ign:1").split())
    assert files == ["/app/.dockerignore", "/app/Dockerfile", "/app/keep.txt",
                     "/app/secret/public.txt", "/app/sub/real"]
    (ctx / "debug.log").write_text("more logs")  # ignored: no effect on the cache
    assert cached_steps(build(mr, ctx, "-t", "ign:1")) == [2, 3]


# --- CMD and ENTRYPOINT: Docker's table ----------------------------------------------------------

SHOW = 'FROM busybox\nRUN printf \'#!/bin/sh\\nfor a; do printf "[%%s]" "$a"; done\\necho\\n\' > /show && chmod +x /show\n'


@pytest.mark.parametrize("lines,args,expected", [
    # no ENTRYPOINT
    (['CMD ["/show", "p1"]'], [], "[p1]"),
    (["CMD /show p1"], [], "[p1]"),
    (['CMD ["/show", "p1"]'], ["/show", "x"], "[x]"),  # run's COMMAND replaces CMD
    # ENTRYPOINT in exec form: CMD is appended, run's COMMAND replaces CMD
    (['ENTRYPOINT ["/show", "e"]'], [], "[e]"),
    (['ENTRYPOINT ["/show", "e"]', 'CMD ["c"]'], [], "[e][c]"),
    (['ENTRYPOINT ["/show", "e"]', "CMD c1 c2"], [], "[e][/bin/sh][-c][c1 c2]"),
    (['ENTRYPOINT ["/show", "e"]', 'CMD ["c"]'], ["x", "y"], "[e][x][y]"),
    # ENTRYPOINT in shell form: sh -c ignores CMD and run's arguments
    (["ENTRYPOINT /show e", 'CMD ["c"]'], [], "[e]"),
    (["ENTRYPOINT /show e"], ["x"], "[e]"),
])
def test_cmd_and_entrypoint_table(mr, tmp_path, lines, args, expected):
    ctx = write_files(tmp_path, {"Dockerfile": SHOW + "\n".join(lines) + "\n"})
    build(mr, ctx, "-t", "table:1")
    assert mr.ok("run", "--rm", "--network", "none", "table:1", *args).strip() == expected


def test_a_new_entrypoint_drops_an_inherited_cmd(mr, tmp_path):
    base = write_files(tmp_path / "base", {"Dockerfile": 'FROM busybox\nCMD ["base-cmd"]\n'})
    build(mr, base, "-t", "withcmd:1")
    child = write_files(tmp_path / "child", {"Dockerfile": 'FROM withcmd:1\nENTRYPOINT ["echo"]\n'})
    build(mr, child, "-t", "ep:1")
    assert config(mr, "ep:1")["Cmd"] in (None, [])
    assert mr.ok("run", "--rm", "--network", "none", "ep:1").strip() == ""


# --- ARG and ENV ---------------------------------------------------------------------------------


def test_arg_and_env_scoping_across_stages(mr, tmp_path):
    ctx = write_files(tmp_path, {"Dockerfile": """
        ARG BASE=busybox
        ARG GLOBAL=g
        FROM ${BASE} AS one
        ARG LOCAL=l1
        ENV FROM_ENV=e1
        RUN echo "one: global=[$GLOBAL] local=[$LOCAL] env=[$FROM_ENV]" > /one.txt
        FROM ${BASE}
        ARG GLOBAL
        COPY --from=one /one.txt /
        RUN echo "two: global=[$GLOBAL] local=[$LOCAL] env=[$FROM_ENV]" > /two.txt
        ENV LATER=$GLOBAL-x
        CMD ["sh", "-c", "cat /one.txt /two.txt; echo run: local=[$LOCAL] later=[$LATER]"]
        """})
    r = build(mr, ctx, "--build-arg", "LOCAL=override", "--build-arg", "UNUSED=1", "-t", "args:1")
    assert "[Warning] One or more build-args ['UNUSED'] were not consumed" in r.stdout
    out = mr.ok("run", "--rm", "--network", "none", "args:1").splitlines()
    assert out == ["one: global=[] local=[override] env=[e1]",  # a global ARG needs redeclaring
                   "two: global=[g] local=[] env=[]",  # nothing crosses a FROM
                   "run: local=[] later=[g-x]"]  # ARGs are build-time only; ENV stays
    hist = mr.ok("history", "--no-trunc", "args:1")
    assert "|1 GLOBAL=g /bin/sh -c echo" in hist  # RUN's history names the build args it saw


# --- metadata, history, errors -------------------------------------------------------------------


def test_metadata_instructions_and_history(mr, tmp_path):
    ctx = write_files(tmp_path, {"Dockerfile": """
        # syntax and comments are fine
        FROM busybox
        LABEL org.example.kind="demo image" version=1
        EXPOSE 80 53/udp
        VOLUME ["/data"]
        USER 1000:1000
        WORKDIR /work/dir
        STOPSIGNAL SIGINT
        SHELL ["/bin/sh", "-ec"]
        HEALTHCHECK --interval=5s --retries=2 CMD true
        ONBUILD RUN echo triggered > /tmp/onbuild
        """})
    build(mr, ctx, "-t", "meta:1")
    c = config(mr, "meta:1")
    assert {"org.example.kind": "demo image", "version": "1"}.items() <= c["Labels"].items()
    assert c["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert c["Volumes"] == {"/data": {}} and c["User"] == "1000:1000"
    assert c["WorkingDir"] == "/work/dir" and c["StopSignal"] == "SIGINT"
    assert c["Shell"] == ["/bin/sh", "-ec"]
    assert c["Healthcheck"]["Test"] == ["CMD-SHELL", "true"] and c["Healthcheck"]["Retries"] == 2
    assert c["OnBuild"] == ["RUN echo triggered > /tmp/onbuild"]
    hist = mr.ok("history", "--no-trunc", "meta:1")
    assert '/bin/sh -c #(nop)  EXPOSE 80/tcp 53/udp' in hist
    assert mr.ok("run", "--rm", "--network", "none", "meta:1", "pwd").strip() == "/work/dir"
    child = write_files(tmp_path / "child", {"Dockerfile": "FROM meta:1\nUSER root\n"})
    r = build(mr, child, "-t", "child:1")
    assert "Executing 1 build trigger" in r.stdout
    assert mr.ok("run", "--rm", "--network", "none", "child:1", "cat", "/tmp/onbuild") == "triggered\n"
    assert config(mr, "child:1").get("OnBuild") in (None, [])


@pytest.mark.parametrize("dockerfile,msg", [
    ("FROM busybox\nRUNN true\n", "Dockerfile:2:"),
    ("RUN true\n", "Dockerfile:1:"),
    ("FROM busybox\nCOPY missing.txt /\n", "missing.txt"),
    ("FROM busybox\nRUN exit 3\n", "returned a non-zero code: 3"),
    ("FROM busybox\nCOPY a b c\n", "must be a directory and end with a /"),
])
def test_build_errors_are_one_clear_line(mr, tmp_path, dockerfile, msg):
    ctx = write_files(tmp_path, {"Dockerfile": dockerfile, "a": "", "b": ""})
    r = build(mr, ctx, "-t", "bad:1", ok=False)
    assert r.returncode == 1 and msg in r.stderr
    assert "Traceback" not in r.stderr
    assert mr.ok("ps", "-aq") == ""  # no step container left behind


def test_copy_rules_chown_and_add_extracts_archives(mr, tmp_path):
    import tarfile

    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "f").write_text("f")
    with tarfile.open(tmp_path / "pack.tar.gz", "w:gz") as t:
        t.add(tmp_path / "tree", arcname="packed")
    ctx = write_files(tmp_path, {"Dockerfile": """
        FROM busybox
        COPY tree /copied
        COPY tree/sub/f /as-file
        COPY tree/sub/f /into-dir/
        COPY --chown=mini:mini *.txt /txt/
        ADD pack.tar.gz /unpacked/
        COPY pack.tar.gz /kept/
        """, "one.txt": "1", "two.txt": "2"})
    build(mr, ctx, "-t", "copy:1")
    out = mr.ok("run", "--rm", "--network", "none", "copy:1", "sh", "-c",
                "ls /copied /into-dir; cat /as-file; echo; stat -c '%U %n' /txt/*; "
                "cat /unpacked/packed/sub/f; echo; ls /kept")
    assert out.split() == ["/copied:", "sub", "/into-dir:", "f", "f", "mini", "/txt/one.txt",
                           "mini", "/txt/two.txt", "f", "pack.tar.gz"]


def test_add_of_a_url_offline_says_why(mr, tmp_path):
    ctx = write_files(tmp_path, {"Dockerfile": "FROM busybox\nADD http://127.0.0.1:9/nothing /x\n"})
    r = build(mr, ctx, "-t", "url:1", ok=False)
    assert r.returncode == 1 and "cannot download it" in r.stderr


def test_target_stops_at_a_stage(mr, tmp_path):
    ctx = write_files(tmp_path, {"Dockerfile": """
        FROM busybox AS first
        RUN echo first > /which
        FROM busybox AS second
        RUN echo second > /which
        """})
    build(mr, ctx, "--target", "first", "-t", "tgt:1")
    assert mr.ok("run", "--rm", "--network", "none", "tgt:1", "cat", "/which") == "first\n"
    r = build(mr, ctx, "--target", "nope", "-t", "tgt:2", ok=False)
    assert "failed to reach build target nope" in r.stderr


def test_quiet_prints_only_the_id(mr, tmp_path):
    ctx = write_files(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo noisy\n"})
    r = build(mr, ctx, "-q", "-t", "quiet:1")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", r.stdout)


# --- commit ---------------------------------------------------------------------------------------


def test_commit_a_changed_container(mr):
    mr.ok("run", "--name", "tocommit", "--network", "none", "busybox", "sh", "-c",
          "echo changed > /etc/motd; rm /bin/vi; mkdir -p /new/dir")
    out = mr.ok("commit", "-m", "a message", "-a", "me <me@example.org>", "-c", "ENV COMMITTED=yes",
                "-c", 'CMD ["cat", "/etc/motd"]', "tocommit", "committed:1")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", out)
    assert mr.ok("run", "--rm", "--network", "none", "committed:1") == "changed\n"
    r = mr("run", "--rm", "--network", "none", "committed:1", "sh", "-c", "ls /bin/vi; echo $COMMITTED; ls -d /new/dir")
    assert "No such file" in r.stderr and r.stdout.split() == ["yes", "/new/dir"]
    info = json.loads(mr.ok("image", "inspect", "committed:1"))[0]
    assert info["Author"] == "me <me@example.org>" and info["Comment"] == "a message"
    assert "a message" in mr.ok("history", "committed:1")
    # the runtime's /etc/hostname, hosts and resolv.conf mount points are not part of it
    files = mr.ok("run", "--rm", "--network", "none", "--entrypoint", "", "committed:1", "sh", "-c",
                  "true")
    assert files == ""
    mr.ok("rm", "tocommit")


def test_commit_a_running_container_freezes_it(mr):
    mr.ok("run", "-d", "--name", "live", "--network", "none", "busybox", "sh", "-c",
          "echo up > /state; sleep 60")
    for _ in range(50):
        if "up" in mr("exec", "live", "cat", "/state").stdout:
            break
    mr.ok("commit", "live", "live:1")
    assert mr.record("live")["State"]["Status"] == "running"  # thawed again
    assert mr.ok("run", "--rm", "--network", "none", "live:1", "cat", "/state") == "up\n"


def test_a_built_healthcheck_turns_a_container_unhealthy(mr, tmp_path):
    import time

    ctx = write_files(tmp_path, {"Dockerfile": """
        FROM busybox
        HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD test -f /tmp/ok
        CMD ["sleep", "60"]
        """})
    build(mr, ctx, "-t", "hc:1")
    mr.ok("run", "-d", "--name", "hc", "--network", "none", "hc:1")

    def status() -> str:
        return mr.ok("inspect", "-f", "{{.State.Health.Status}}", "hc").strip()

    assert status() == "starting"
    deadline = time.monotonic() + 15
    while status() != "unhealthy" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert status() == "unhealthy"
    assert "(unhealthy)" in mr.ok("ps", "--filter", "name=hc")
    mr.ok("exec", "hc", "touch", "/tmp/ok")
    deadline = time.monotonic() + 10
    while status() != "healthy" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert status() == "healthy"


# --- build, push with token auth, pull back by digest, run ----------------------------------------


@pytest.fixture
def token_registry(tmp_path):
    """A local registry with token auth (tests/registry/tokenserver.py): anonymous pull, the
    test user may push. Stopped at teardown."""
    import shutil
    import sys

    if not shutil.which("docker-registry"):
        pytest.skip("docker-registry is not installed (scripts/setup installs it)")
    pytest.importorskip("cryptography")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
    import localregistry as lr

    reg = lr.LocalRegistry(tmp_path / "registry", "token").start()
    yield reg, lr
    reg.stop()


def test_build_push_with_token_auth_pull_by_digest_and_run(mr, tmp_path, token_registry):
    reg, lr = token_registry
    ctx = write_files(tmp_path / "ctx", {"Dockerfile": """
        FROM busybox
        COPY msg /msg
        CMD ["cat", "/msg"]
        """, "msg": "pushed and pulled\n"})
    name = f"{reg.host}/built/app:v1"
    build(mr, ctx, "-t", name)
    anonymous = mr("push", name)
    assert anonymous.returncode == 125 and "login" in anonymous.stderr  # a pull-only token
    mr.ok("login", "-u", lr.USER, "--password-stdin", reg.host, input=lr.PASSWORD + "\n")
    digest = None
    try:
        out = mr.ok("push", name)
        digest = re.search(r"digest: (sha256:[0-9a-f]{64})", out).group(1)
        image_id = json.loads(mr.ok("image", "inspect", name))[0]["Id"]
        mr.ok("rmi", name)
        mr.ok("pull", f"{reg.host}/built/app@{digest}")
        assert json.loads(mr.ok("image", "inspect", f"{reg.host}/built/app@{digest}"))[0]["Id"] \
            == image_id  # the same config: the same image
        assert mr.ok("run", "--rm", "--network", "none", f"{reg.host}/built/app@{digest}") == \
            "pushed and pulled\n"
    finally:
        mr("logout", reg.host)
        mr("rmi", "-f", f"{reg.host}/built/app@{digest}" if digest else name)
