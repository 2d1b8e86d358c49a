"""What every command shares: the consoles, the global options, the engine, JSON output, and
the one place where errors become an exit code and a line (or a JSON object).

Exit codes: 0 success; 1 a failed run (some unit errored) or an error of the data, the store
or the database; 2 a usage or configuration error (a bad option, an unknown load id or feed,
a broken project file); 130 interrupted. Under ``--json`` an error is printed on stdout as
``{"ok": false, "error": "<message>", "kind": "<kind>", "exit_code": <code>}`` and nothing
else is printed about it; otherwise it is one line ``sluice: <message>`` on stderr.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

# typer carries its own copy of click: the classes it raises and passes around are these.
from typer._click import Context
from typer._click.exceptions import ClickException, UsageError
from typer._click.globals import get_current_context
from typer.core import TyperGroup, TyperOption

from sluice.api import Engine, open_engine
from sluice.config import Settings, load_settings
from sluice.errors import ConfigError, SluiceError
from sluice.logs import describe
from sluice.runtime.progress import Progress, make_progress

log = logging.getLogger("sluice.cli")

#: https://no-color.org: present and not empty means no colours (here: no styles at all).
NO_COLOR = os.environ.get("NO_COLOR", "") != ""


def make_console(*, stderr: bool = False) -> Console:
    """A console that prints untrusted text as it is (no emoji codes, no highlighting)."""
    stream = sys.stderr if stderr else sys.stdout
    sized = stream.isatty() or os.environ.get("COLUMNS", "").isdigit()
    return Console(
        stderr=stderr,
        width=None if sized else 160,  # not a terminal: wide enough for the tables
        soft_wrap=True,
        emoji=False,
        highlight=False,
        color_system=None if NO_COLOR else "auto",
    )


out = make_console()
err = make_console(stderr=True)


def _flag_type(original: Callable[[TyperOption, Context], str | None]) -> Any:
    def display_type_rich(self: TyperOption, ctx: Context) -> str | None:
        return None if self.is_flag else original(self, ctx)

    return display_type_rich


# typer's rich help shows the type of a flag (`--json <bool>`), yet a flag takes no value; the
# plain help (docs/cli.md) leaves it out already.
setattr(TyperOption, "display_type_rich", _flag_type(TyperOption.display_type_rich))  # noqa: B010


@dataclass
class CliState:
    """The global options of this invocation, set by the main callback."""

    project: Path | None = None
    debug: bool = False
    #: Progress bars on stderr (a terminal, text logs).
    bars: bool = False
    log_level: int = logging.INFO
    argv: list[str] = field(default_factory=list)


state = CliState()

ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-p",
        help="Project file (default: nearest sluice.toml; env SLUICE_PROJECT).",
        show_default=False,
        metavar="FILE",
    ),
]


def given(*names: str, **settings: Any) -> Any:
    """An option whose absence means "not given" (None): no default shown in ``--help``."""
    return typer.Option(*names, show_default=False, **settings)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
HostOpt = Annotated[str, typer.Option(help="Address to listen on.")]
PortOpt = Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        help="A secret every request must carry (env SLUICE_HTTP_TOKEN); required to "
        "listen beyond the loopback interface.",
        envvar="SLUICE_HTTP_TOKEN",
        show_default=False,
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", "-w", min=1, metavar="N", help="Loads at once (env SLUICE_WORKERS)."),
]


# -- the engine and output ------------------------------------------------------------------------


def settings(workers: int | None = None) -> Settings:
    resolved = load_settings(state.project)
    if workers is not None:
        resolved = replace(resolved, load=replace(resolved.load, workers=workers))
    return resolved


@contextmanager
def engine(workers: int | None = None) -> Iterator[Engine]:
    with open_engine(settings=settings(workers)) as opened:
        log.debug(
            "database %s, project file %s",
            opened.db.display_url,
            opened.settings.project_file or "none",
        )
        yield opened


def progress() -> Progress:
    """Bars on the error console (the one log lines go through) or log lines."""
    return make_progress(show=state.bars, console=err)


def print_json(value: Any) -> None:
    """`value` as one JSON document on stdout, written as it is (no re-parsing, no colours)."""
    sys.stdout.write(json.dumps(value, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def say(text: str) -> None:
    """One line on stdout, printed literally."""
    out.print(text, markup=False, emoji=False, highlight=False)


def usage_error(message: str) -> UsageError:
    """A usage error (exit 2) found by a command after its options were parsed."""
    return UsageError(message, ctx=get_current_context(silent=True))


# -- errors ---------------------------------------------------------------------------------------


def wants_json(args: Sequence[str]) -> bool:
    """Whether the command line asks for JSON output (``--json``, ``--format json``); read
    from the arguments themselves, since an error may come before they are parsed."""
    for i, arg in enumerate(args):
        if arg == "--":
            return False
        if arg in ("--json", "--format=json") or (
            arg == "--format" and args[i + 1 : i + 2] == ["json"]
        ):
            return True
    return False


def emit_error(message: str, kind: str, code: int) -> int:
    """Print an error as the command line asked (one line, or a JSON object); return `code`."""
    line = " ".join(message.split())
    if wants_json(state.argv):
        print_json({"ok": False, "error": line, "kind": kind, "exit_code": code})
    else:
        sys.stderr.write(f"sluice: {line}\n")
        sys.stderr.flush()
    return code


def usage_message(exc: UsageError) -> str:
    """A usage error in one line, and where to read about the command: ``invalid value for
    '--errors': input should be greater than or equal to 0 (see 'sluice status --help')``."""
    text = exc.format_message().strip().rstrip(".").replace("Value error, ", "")
    text = ": ".join(_lower_first(part) for part in text.split(": "))
    if exc.ctx is not None:
        text += f" (see '{exc.ctx.command_path} --help')"
    return text


def _lower_first(text: str) -> str:
    """`text` with a capitalised first word in lower case (not an acronym such as SQL)."""
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def report_exception(exc: BaseException) -> int:
    """Print an exception that ended a command; return the exit code it means."""
    if isinstance(exc, KeyboardInterrupt):
        return emit_error("interrupted", "Interrupted", 130)
    if isinstance(exc, SluiceError):
        code = 2 if isinstance(exc, ConfigError) else 1
        return emit_error(str(exc), type(exc).__name__, code)
    if state.debug:
        traceback.print_exception(exc, file=sys.stderr)
        return emit_error(f"internal error: {describe(exc)}", "InternalError", 1)
    hint = " (run again with --debug for the traceback)"
    return emit_error(f"internal error: {describe(exc)}{hint}", "InternalError", 1)


class SluiceGroup(TyperGroup):
    """The root command: every command's errors end here, as one line and an exit code."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, ClickException):
            raise
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # the reader went away (`| head`): not an error here
                raise
            raise typer.Exit(report_exception(exc)) from None
        except (Exception, KeyboardInterrupt) as exc:
            raise typer.Exit(report_exception(exc)) from None
