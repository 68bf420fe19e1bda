"""Man pages from the click command definitions: minirun(1), minirun-run(1), minirun-network-ls(1)...

    python -m minirun.cli.manpage OUTDIR        (scripts/gen-man; scripts/setup installs them)

One page per command and group, in groff's man macros: NAME (the first line of the help),
SYNOPSIS (the usage line), DESCRIPTION (the help), OPTIONS (each flag with its metavar, its
help and its default), COMMANDS for a group, SEE ALSO (the parent and the subcommands). The
pages are generated, never edited: the help text in the code is their only source, so they
cannot drift from `minirun CMD --help`. Not a command of the CLI: nothing here loads on a
normal command's start-up.
"""

from __future__ import annotations

import os
import sys
import time

import click

from .. import __version__


def escape(text: str) -> str:
    """Text safe in a groff line: backslashes doubled, hyphens as \\- (so they copy and search
    as ASCII), a line starting with . or ' protected by \\&."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + ln) if ln.startswith((".", "'")) else ln
                     for ln in text.split("\n"))


def page_name(path: list[str]) -> str:
    return "-".join(path)


def _help(cmd: click.Command) -> str:
    text = (cmd.help or cmd.short_help or "").split("\f", 1)[0]
    return click.unstyle(text).strip()


def _paragraphs(text: str) -> str:
    """click's help text (paragraphs, indented blocks kept as they are) as groff."""
    out = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if all(ln.startswith(" ") for ln in lines if ln.strip()):
            out += [".PP", ".nf", ".RS 4", *(escape(ln.strip()) for ln in lines), ".RE", ".fi"]
        else:
            out += [".PP", escape(" ".join(ln.strip() for ln in lines))]
    return "\n".join(out)


def _option(ctx: click.Context, p: click.Option) -> str:
    names = ", ".join(f"\\fB{escape(o)}\\fR" for o in (*p.opts, *p.secondary_opts))
    if not p.is_flag and not p.count:
        names += f" \\fI{escape(p.make_metavar(ctx) if _metavar_takes_ctx() else p.make_metavar())}\\fR"
    help_ = click.unstyle(p.help or "").strip()
    default = p.default  # plain values only (click 8.3 marks "none given" with a sentinel)
    if isinstance(default, (str, int, float)) and not isinstance(default, bool) \
            and default != "" and not p.is_flag and not p.multiple:
        help_ += f" (default: {default})"
    return f".TP\n{names}\n{escape(help_) if help_ else ''}".rstrip()


def _metavar_takes_ctx() -> bool:
    """click 8.2 gave Parameter.make_metavar a ctx argument."""
    import inspect

    return "ctx" in inspect.signature(click.Option.make_metavar).parameters


def render(cmd: click.Command, path: list[str], parent: list[str] | None = None,
           date: str | None = None) -> str:
    """The man page of `cmd`, found at `path` (["minirun", "network", "ls"])."""
    ctx = click.Context(cmd, info_name=" ".join(path))
    name = page_name(path)
    date = date or time.strftime("%Y-%m-%d", time.gmtime(
        int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))))
    first = " ".join(_help(cmd).split("\n\n", 1)[0].split()).rstrip(".") or (cmd.name or "")
    pieces = cmd.collect_usage_pieces(ctx)
    lines = [f'.TH "{name.upper()}" 1 "{date}" "minirun {__version__}" "minirun Manual"',
             ".SH NAME", f"{escape(name)} \\- {escape(first)}",
             ".SH SYNOPSIS", f"\\fB{escape(' '.join(path))}\\fR {escape(' '.join(pieces))}",
             ".SH DESCRIPTION", _paragraphs(_help(cmd)) or ".PP"]
    options = [p for p in cmd.get_params(ctx) if isinstance(p, click.Option) and not p.hidden]
    if options:
        lines += [".SH OPTIONS", *(_option(ctx, p) for p in options)]
    subs: list[str] = []
    if isinstance(cmd, click.Group):
        lines.append(".SH COMMANDS")
        for sub_name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, sub_name)
            if sub is None or sub.hidden:
                continue
            subs.append(page_name([*path, sub_name]))
            lines += [".TP", f"\\fB{escape(sub_name)}\\fR",
                      escape(sub.get_short_help_str(limit=300))]
    see = ([page_name(parent)] if parent else []) + subs
    if see:
        lines += [".SH SEE ALSO", ", ".join(f"\\fB{escape(s)}\\fR(1)" for s in see)]
    return "\n".join(lines) + "\n"


def pages(group: click.Command, path: list[str] | None = None,
          parent: list[str] | None = None) -> dict[str, str]:
    """{"minirun-run.1": text, ...} for `group` and every command under it."""
    path = path or ["minirun"]
    out = {page_name(path) + ".1": render(group, path, parent)}
    if isinstance(group, click.Group):
        ctx = click.Context(group, info_name=" ".join(path))
        for name in group.list_commands(ctx):
            sub = group.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                out.update(pages(sub, [*path, name], path))
    return out


def write(outdir: str) -> list[str]:
    """Write every page into outdir (created); the file names written."""
    from . import main

    os.makedirs(outdir, exist_ok=True)
    written = []
    for filename, text in sorted(pages(main).items()):
        with open(os.path.join(outdir, filename), "w") as f:
            f.write(text)
        written.append(filename)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m minirun.cli.manpage OUTDIR")
    names = write(sys.argv[1])
    print(f"{len(names)} man pages in {sys.argv[1]}")
