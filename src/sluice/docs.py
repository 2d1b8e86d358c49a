"""The command-line reference, ``docs/cli.md``, generated from the commands' ``--help``.

    python -m sluice.docs            # (re)write docs/cli.md
    python -m sluice.docs --check    # exit 1 if docs/cli.md differs from what would be written

The command tree of `sluice.cli.app` is walked depth first, in the order the commands are
declared, and every command's help is rendered as plain text at a fixed width: typer's rich
panels are switched off for the rendering (the same help, without boxes or colours), so the
output depends neither on the terminal nor on the environment and is identical between runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import typer
from typer.core import TyperCommand, TyperGroup

#: Columns the help is wrapped to.
WIDTH = 100
#: Where the reference lives, relative to the repository root.
CLI_DOC = Path("docs") / "cli.md"

_HEADER = """\
# Command-line reference

This file is generated from the `--help` of every `sluice` command by `python3 tasks.py docs`;
do not edit it by hand. `python3 tasks.py lint` fails when it is out of date.
"""

Command = TyperCommand | TyperGroup


def help_texts(app: typer.Typer, name: str = "sluice") -> Iterator[tuple[str, str]]:
    """(command path, plain help text) of `app` and every command below it, depth first."""
    root = typer.main.get_command(app)
    if not isinstance(root, TyperCommand | TyperGroup):
        raise TypeError(f"{name} is not a typer command: {type(root).__name__}")
    yield from _walk(root, name, None)


def _walk(command: Command, name: str, parent: typer.Context | None) -> Iterator[tuple[str, str]]:
    # `get_command` builds a fresh tree, so switching off rich here changes nothing else.
    command.rich_markup_mode = None
    ctx = typer.Context(
        command,
        parent=parent,
        info_name=name,
        terminal_width=WIDTH,
        max_content_width=WIDTH,
        color=False,
    )
    yield ctx.command_path, command.get_help(ctx)
    if isinstance(command, TyperGroup):
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is None or sub.hidden:
                continue
            if not isinstance(sub, TyperCommand | TyperGroup):
                raise TypeError(f"{ctx.command_path} {sub_name} is not a typer command")
            yield from _walk(sub, sub_name, ctx)


def render(app: typer.Typer) -> str:
    """The whole text of ``docs/cli.md``."""
    parts = [_HEADER]
    for path, text in help_texts(app):
        body = "\n".join(line.rstrip() for line in text.strip("\n").splitlines())
        parts.append(f"## {path}\n\n```text\n{body}\n```\n")
    return "\n".join(parts)


def default_output() -> Path:
    """``docs/cli.md`` of the checkout this module runs from, else of the current folder."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "src" / "sluice").is_dir():
        return root / CLI_DOC
    return CLI_DOC


def _shown(path: Path) -> str:
    """`path` relative to the current folder when it is below it, for messages."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sluice.docs",
        description="Generate the command-line reference (docs/cli.md) from --help.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the file differs from what would be written",
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="the file to write (default: docs/cli.md)"
    )
    args = parser.parse_args(argv)
    from sluice.cli import app  # imported here: --help of this module needs no CLI

    output: Path = args.output or default_output()
    wanted = render(app)
    current = output.read_text(encoding="utf-8") if output.is_file() else None
    if args.check:
        if current != wanted:
            problem = "is missing" if current is None else "is stale: it differs from --help"
            print(f"{_shown(output)} {problem}; run python3 tasks.py docs", file=sys.stderr)
            return 1
        return 0
    if current != wanted:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(wanted, encoding="utf-8", newline="\n")
        print(f"wrote {_shown(output)}")
    else:
        print(f"{_shown(output)} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
