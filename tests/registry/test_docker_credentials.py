"""login -> pull/push -> logout through Docker's config.json and a credential helper, against
the conftest's basic-auth registry, the CLI in a subprocess with its own DOCKER_CONFIG and a
helper on PATH (tests/credhelpers.py). Nothing here touches ~/.docker or /var/lib/minirun."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

import localregistry as lr
from credhelpers import calls, kept, write_helper
from oneline import cli_error
from minirun.image.auth import AuthFile

MINIRUN = [str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "minirun")]


@pytest.fixture
def cli(tmp_path):
    """run(*args) with --root tmp_path/root, DOCKER_CONFIG tmp_path/dc, tmp_path/bin on PATH."""
    env = {k: v for k, v in os.environ.items()
           if "proxy" not in k.lower() and not k.startswith("MINIRUN_")}
    env["DOCKER_CONFIG"] = str(tmp_path / "dc")
    env["PATH"] = f"{tmp_path / 'bin'}:{env['PATH']}"

    def run(*args: str, input: str | None = None, check: bool = True):
        r = subprocess.run([*MINIRUN, "--root", str(tmp_path / "root"), *args], env=env,
                           capture_output=True, text=True, input=input, timeout=120)
        if check:
            assert r.returncode == 0, r.stderr
        return r
    return run


def login(cli, host: str):
    return cli("login", "-u", lr.USER, "--password-stdin", host, input=lr.PASSWORD + "\n")


def test_login_pull_push_logout_through_config_json(basic_registry, cli, tmp_path):
    host = basic_registry.host
    config = tmp_path / "dc" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"psFormat": "table {{.Names}}"}))
    r = login(cli, host)
    assert r.stdout == "Login Succeeded\n"
    assert f"stored unencrypted in '{config}'" in r.stderr
    assert config.stat().st_mode & 0o777 == 0o600
    data = json.loads(config.read_text())
    assert data["psFormat"] == "table {{.Names}}"  # the file's other keys are kept
    assert data["auths"] == {host: {"auth": base64.b64encode(
        f"{lr.USER}:{lr.PASSWORD}".encode()).decode()}}
    cli("pull", "-q", f"{host}/busybox:oci")
    cli("tag", f"{host}/busybox:oci", f"{host}/dc-{os.getpid()}:1")
    cli("push", f"{host}/dc-{os.getpid()}:1")
    assert cli("logout", host).stdout == f"Removing login credentials for {host}\n"
    assert json.loads(config.read_text())["auths"] == {}
    assert "unauthorized" in cli_error(cli("pull", f"{host}/busybox:oci", check=False))


def test_login_pull_logout_through_a_helper(basic_registry, cli, tmp_path):
    host = basic_registry.host
    write_helper(tmp_path / "bin", "mrtest")
    config = tmp_path / "dc" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"credsStore": "mrtest"}))
    r = login(cli, host)
    assert r.stdout == "Login Succeeded\n" and "unencrypted" not in r.stderr
    assert json.loads(config.read_text()) == {"credsStore": "mrtest", "auths": {host: {}}}
    assert kept(tmp_path / "bin", "mrtest") == {host: [lr.USER, lr.PASSWORD]}
    cli("pull", "-q", f"{host}/busybox:v2s2")
    assert f"get {host}" in calls(tmp_path / "bin", "mrtest")
    cli("logout", host)
    assert kept(tmp_path / "bin", "mrtest") == {}
    assert "unauthorized" in cli_error(cli("pull", f"{host}/busybox:oci", check=False))


def test_cred_helpers_entry_for_one_registry(basic_registry, cli, tmp_path):
    """credHelpers names the helper of one registry; a registry it does not name uses auths."""
    host = basic_registry.host
    write_helper(tmp_path / "bin", "one")
    (tmp_path / "dc").mkdir()
    (tmp_path / "dc" / "config.json").write_text(json.dumps({"credHelpers": {host: "one"}}))
    login(cli, host)
    assert kept(tmp_path / "bin", "one") == {host: [lr.USER, lr.PASSWORD]}
    cli("pull", "-q", f"{host}/busybox:oci")


def test_minirun_auth_file_is_the_fallback(basic_registry, cli, tmp_path):
    """A login kept by an older minirun in <root>/auth.json still works; logout forgets it."""
    host = basic_registry.host
    AuthFile(str(tmp_path / "root" / "auth.json")).login(host, lr.USER, lr.PASSWORD)
    cli("pull", "-q", f"{host}/busybox:oci")
    assert cli("logout", host).stdout.startswith("Removing login credentials")
    assert AuthFile(str(tmp_path / "root" / "auth.json")).credentials(host) is None


def test_missing_helper_is_one_line(basic_registry, cli, tmp_path):
    (tmp_path / "dc").mkdir()
    (tmp_path / "dc" / "config.json").write_text(json.dumps({"credsStore": "absent"}))
    r = cli("pull", f"{basic_registry.host}/busybox:oci", check=False)
    assert r.returncode == 125
    assert cli_error(r) == ("credential helper docker-credential-absent: not found in "
                            "PATH: install it, or remove it from credsStore/credHelpers in "
                            "config.json")
