"""pull, login, logout; and ensure_image(), how `run` gets its image.

    minirun pull [-q] [--platform os/arch[/variant]] [--insecure-registry HOST]... NAME[:TAG|@DIGEST]
    minirun login [-u USER] [-p PASS | --password-stdin] [SERVER]      (default docker.io)
    minirun logout [SERVER]

Plain HTTP is used only for loopback registries and those named by --insecure-registry (or
$MINIRUN_INSECURE_REGISTRIES, comma-separated): everything else is HTTPS with the system CAs.
Credentials are Docker's: `login` keeps them in $DOCKER_CONFIG/config.json (~/.docker/config.json),
or in the credential helper it names (credsStore, credHelpers); pulls and pushes look there
first, then in minirun's own <root>/auth.json ($MINIRUN_AUTH_FILE); `logout` forgets both
(image/auth.py).
The work is engine/api/distribution.py's; the progress it reports is rendered by progress.py.
"""

from __future__ import annotations

import sys

import click

from ..errors import ImageError, RegistryError
from ..image import reference
from . import image, main
from .images import _api as _images_api
from .progress import Display

PULL_POLICIES = ("always", "missing", "never")


def _distribution():
    """engine/api/distribution.py, imported when pulling or logging in: it brings the registry
    client (http.client, ssl, socket, threads), which no other command needs."""
    from ..engine.api import distribution  # lazily: every minirun command imports this module

    return distribution


def _pull(obj, name: str, *, platform: str | None = None, insecure=(), quiet: bool = False,
          out=None):
    display = None if quiet else Display(out or sys.stdout)
    try:
        return _distribution().pull(obj.store(), name, platform=platform,
                                    insecure_registries=insecure, auth_file=obj.auth_path,
                                    progress=display)
    finally:
        if display is not None:
            display.close()


@main.command()
@click.option("-q", "--quiet", is_flag=True, help="Print only the image name.")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Pull the image for this platform (default: this host's).")
@click.option("--insecure-registry", "insecure", multiple=True, metavar="HOST[:PORT]",
              help="Allow plain HTTP to this registry (repeatable; loopback ones always may).")
@click.argument("name")
@click.pass_obj
def pull(obj, quiet: bool, platform: str | None, insecure: tuple[str, ...], name: str) -> None:
    """Pull an image from a registry: NAME[:TAG|@DIGEST]."""
    ref = reference.parse(name)
    _pull(obj, name, platform=platform, insecure=insecure, quiet=quiet)
    click.echo(ref.name)  # docker.io/library/alpine:latest, as `docker pull` ends


@image.command("pull")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image name.")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]")
@click.option("--insecure-registry", "insecure", multiple=True, metavar="HOST[:PORT]")
@click.argument("name")
@click.pass_context
def image_pull(ctx, quiet, platform, insecure, name) -> None:
    """Pull an image from a registry (same as `minirun pull`)."""
    ctx.invoke(pull, quiet=quiet, platform=platform, insecure=insecure, name=name)


@main.command()
@click.option("-u", "--username", help="User name.")
@click.option("-p", "--password", help="Password (visible to other users: prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--insecure-registry", "insecure", multiple=True, metavar="HOST[:PORT]",
              help="Allow plain HTTP to this registry.")
@click.argument("server", required=False)
@click.pass_obj
def login(obj, username, password, password_stdin, insecure, server) -> None:
    """Log in to a registry (default docker.io); the credentials are checked, then saved."""
    api = _distribution()
    host = api.server_host(server)
    if password is not None and password_stdin:
        raise RegistryError("--password and --password-stdin are mutually exclusive")
    if password_stdin:
        if not username:
            raise RegistryError("--password-stdin needs --username")
        password = sys.stdin.read().rstrip("\r\n")
    elif password is not None:
        click.echo("WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
                   err=True)
    if not username:
        if not sys.stdin.isatty():
            raise RegistryError(f"login {host}: no user name: give -u USER")
        username = click.prompt("Username")
    if password is None:
        if not sys.stdin.isatty():
            raise RegistryError(f"login {host}: no password: give --password-stdin")
        password = click.prompt("Password", hide_input=True)
    done = api.login(None, host, username, password, insecure_registries=insecure)
    from ..image.auth import DockerConfig  # (light: os, json, base64)

    config = DockerConfig()
    if config.helper_name(host) is None:  # docker login's warning, to stderr
        click.echo(f"WARNING! Your credentials are stored unencrypted in '{config.path}'.\n"
                   "Configure a credential helper to remove this warning. See\n"
                   "https://docs.docker.com/go/credential-store/\n", err=True)
    click.echo(done["Status"])


@main.command()
@click.argument("server", required=False)
@click.pass_obj
def logout(obj, server) -> None:
    """Forget the credentials of a registry (default docker.io)."""
    api = _distribution()
    host = api.server_host(server)
    if api.logout(obj.auth_path, host):
        click.echo(f"Removing login credentials for {host}")
    else:
        click.echo(f"Not logged in to {host}")


def ensure_image(ctx, ref: str, pull_policy: str = "missing", platform: str | None = None):
    """The image `ref` names, pulled first if the policy says so (what `run` and `create` use).

    ctx: the CLI Context (click's ctx.obj, or a click.Context holding it). pull_policy:
    "missing" (pull only when the store has no such image), "always", "never". Pull progress goes
    to stderr, as `docker run` shows it. Returns the ImageRecord.
    """
    obj = ctx.obj if isinstance(ctx, click.Context) else ctx
    if pull_policy not in PULL_POLICIES:
        raise ImageError(f"invalid pull policy {pull_policy!r}: always, missing or never")
    if pull_policy != "always":
        try:
            return _images_api().get(obj.store(), ref)
        except ImageError:
            if pull_policy == "never":
                raise ImageError(f"no such image: {ref} (and --pull=never: pull it first)") from None
    parsed = reference.parse(ref)  # an image ID that is not in the store is no name to pull
    if pull_policy == "missing":
        click.echo(f"Unable to find image '{parsed.familiar}' locally", err=True)
    from .. import trace  # (small; only when pulling)

    if trace.enabled:
        trace.note(f"image {parsed.familiar}: "
                   f"{'not in the store' if pull_policy == 'missing' else '--pull=always'}: "
                   f"pull it from {parsed.registry}")
    return _pull(obj, ref, platform=platform, out=sys.stderr)
