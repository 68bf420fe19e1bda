"""manifest inspect: what a registry holds for an image, read without pulling it.

    minirun manifest inspect [-v] [--insecure] NAME[:TAG|@DIGEST]

The manifest (or the index of a multi-platform image) as the registry sends it, its digest
checked, printed as JSON indented with tabs as `docker manifest inspect` prints it; `-v` gives
Docker's verbose form (Ref, Descriptor, Raw, SchemaV2Manifest or OCIManifest; one per platform
for an index). Credentials and plain-HTTP rules are pull's (cli/pull.py). Docker's other
`manifest` verbs (create, annotate, push, rm) edit local manifest lists for pushing; minirun
does not have them.
"""

from __future__ import annotations

import click

from . import Group, main
from .pull import _distribution


@main.group(cls=Group, table="manifest")
def manifest() -> None:
    """Inspect image manifests in a registry (docker manifest inspect)."""


@manifest.command("inspect")
@click.option("-v", "--verbose", is_flag=True,
              help="Also the descriptors, the raw bytes and each platform's manifest.")
@click.option("--insecure", is_flag=True, help="Allow plain HTTP to this registry.")
@click.argument("name")
@click.pass_obj
def inspect(obj, verbose: bool, insecure: bool, name: str) -> None:
    """Show an image's manifest or manifest list, read from its registry (nothing pulled)."""
    import json  # lazily: every minirun command imports this module

    from ..image import reference

    registry = reference.parse(name).registry
    doc = _distribution().manifest_inspect(name, verbose=verbose, auth_file=obj.auth_path,
                                           insecure_registries=(registry,) if insecure else ())
    click.echo(json.dumps(doc, indent="\t"))
