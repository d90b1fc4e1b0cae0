"""What every ``forum`` command shares: options, output, exit codes, error reporting.

A command module uses it like this::

    from clients.cli import app
    from clients.cli.kit import JsonOption, Output, reporting

    @app.command()
    def hello(json: JsonOption = False) -> None:
        out = Output(json)
        with reporting(out):
            out.emit({"hello": "world"}, "Hello, world")
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import orjson
import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from clients.sdk.errors import ConnectError, InvalidURL, KeyFileError, Refused, VerificationFailed
from clients.sdk.keys import Key, load_key
from forum.protocol.errors import ProtocolError

__all__ = [
    "DEFAULT_URL",
    "ExitCode",
    "JsonOption",
    "KeyOption",
    "Output",
    "TimeoutOption",
    "UrlOption",
    "fail",
    "load_key_or_fail",
    "reporting",
    "run_async",
    "safe_text",
]

T = TypeVar("T")

DEFAULT_URL = "ws://127.0.0.1:8000/ws"


class ExitCode(IntEnum):
    """Exit statuses of every ``forum`` command (documented in docs/sdk.md)."""

    OK = 0
    REFUSED = 1
    """The forum refused an event, or the forum's own checks, run locally, would refuse it."""
    USAGE = 2
    """Bad arguments, options or input file."""
    CONNECT = 3
    """The forum cannot be reached or did not answer in time."""
    VERIFICATION = 4
    """An event received from the forum failed verification (bad signature or schema)."""
    KEY = 5
    """The key file is missing, malformed, already exists (keygen) or readable by others."""
    INTERRUPTED = 130
    """Interrupted (Ctrl-C)."""


UrlOption = Annotated[
    str,
    typer.Option(
        "--url",
        envvar="FORUM_URL",
        help="The forum: http://host:port (as `forum serve` prints it) or ws://host:port/ws.",
        show_envvar=True,
    ),
]
KeyOption = Annotated[
    Path,
    typer.Option(
        "--key",
        "-k",
        envvar="FORUM_KEY",
        help="Key file to sign with (made by `forum keygen`, mode 0600).",
        show_envvar=True,
        dir_okay=False,
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print JSON (one object per line) instead of text, for scripts."),
]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout", min=0.1, help="Seconds to wait for the forum before giving up (exit 3)."
    ),
]

_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def safe_text(text: Any, *, one_line: bool = False, limit: int | None = None) -> str:
    """Untrusted text made harmless for a terminal.

    Control characters (ANSI escapes included) and bidirectional overrides are
    replaced, so an event cannot move the cursor, recolour or disguise output.
    Callers still print the result as plain text, never as markup.
    """
    s = str(text)
    if one_line:
        s = " ".join(s.split())
    s = _UNSAFE.sub("\N{REPLACEMENT CHARACTER}", s)
    if limit is not None and len(s) > limit:
        s = s[: limit - 1] + "…"
    return s


class Output:
    """Where a command's results and errors go: rich text, or JSON lines with ``--json``.

    Results go to stdout, errors and progress to stderr.
    """

    def __init__(self, json_mode: bool) -> None:
        self.json = json_mode
        self.console = Console(highlight=False, emoji=False, soft_wrap=True)
        self.stderr = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)

    def emit(self, data: Mapping[str, Any], human: RenderableType | None = None) -> None:
        """One result: ``data`` as a JSON line with ``--json``, else ``human`` (if given)."""
        if self.json:
            sys.stdout.write(orjson.dumps(data).decode() + "\n")
            sys.stdout.flush()
        elif human is not None:
            self.console.print(human)

    def info(self, message: RenderableType) -> None:
        """Progress for humans, on stderr (silent with ``--json``)."""
        if not self.json:
            self.stderr.print(message)

    def error(self, code: ExitCode, message: str, **extra: Any) -> None:
        """Report an error on stderr (a JSON object with ``--json``)."""
        if self.json:
            line = {"error": message, "exit_code": int(code), **extra}
            sys.stderr.write(orjson.dumps(line).decode() + "\n")
            sys.stderr.flush()
        else:
            self.stderr.print(f"[bold red]error:[/] {escape(message)}")


def fail(out: Output, code: ExitCode, message: str, **extra: Any) -> NoReturn:
    """Report ``message`` and exit with ``code``."""
    out.error(code, message, **extra)
    raise typer.Exit(int(code))


OUR_PACKAGES = frozenset({"forum", "raters", "feeds", "clients"})

EXTRA_OF = {
    **dict.fromkeys(
        "starlette uvicorn sqlalchemy alembic aiosqlite asyncpg pydantic_settings sse_starlette "
        "feedgen nh3 jinja2 prometheus_client structlog numpy scipy sklearn".split(),
        "server",
    ),
    **dict.fromkeys("psutil pyinstrument httpx2".split(), "tools"),
    **dict.fromkeys("mcp mcp_types".split(), "agent"),
}
"""The pyproject extra that installs each third-party module beyond the base install."""


def missing_extra(e: ModuleNotFoundError) -> tuple[str, str] | None:
    """(module, extra) when ``e`` is a third-party module an extra installs; None for our own."""
    missing = (e.name or "").partition(".")[0]
    if not missing or missing in OUR_PACKAGES:
        return None
    return missing, EXTRA_OF.get(missing, "tools")


@contextmanager
def needs(out: Output, extra: str, command: str) -> Iterator[None]:
    """Import, inside this block, what ``command`` needs beyond the base install.

    A third-party module that is not installed ends the command with a usage
    error naming the extra that installs it (``pip install 'mycelium-forum[server]'``),
    not a traceback. A missing module of our own packages is a bug and is raised.
    """
    try:
        yield
    except ModuleNotFoundError as e:
        found = missing_extra(e)
        if found is None:
            raise
        fail(
            out,
            ExitCode.USAGE,
            f"{command} needs the {extra!r} extra ({found[0]} is not installed): "
            f"pip install 'mycelium-forum[{extra}]'",
        )


@contextmanager
def reporting(out: Output) -> Iterator[None]:
    """Turn the errors the SDK raises on purpose into a message and an exit code."""
    try:
        yield
    except Refused as e:
        fail(
            out,
            ExitCode.REFUSED,
            f"refused by the forum: {e.message}",
            reason=e.reason,
            id=e.event_id,
        )
    except ProtocolError as e:
        fail(out, ExitCode.REFUSED, f"the forum would refuse this: {e.message}", reason=e.reason)
    except KeyFileError as e:
        fail(out, ExitCode.KEY, str(e))
    except InvalidURL as e:
        fail(out, ExitCode.USAGE, str(e))
    except ConnectError as e:
        fail(out, ExitCode.CONNECT, str(e))
    except TimeoutError:
        fail(out, ExitCode.CONNECT, "the forum did not answer in time")
    except VerificationFailed as e:
        fail(out, ExitCode.VERIFICATION, str(e), seq=e.seq, reason=e.error.reason)
    except KeyboardInterrupt:
        fail(out, ExitCode.INTERRUPTED, "interrupted")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine to completion (Ctrl-C raises KeyboardInterrupt)."""
    return asyncio.run(coro)


def load_key_or_fail(out: Output, path: Path) -> Key:
    """The key in ``path``; exit 5 with a clear message if it cannot be used."""
    try:
        return load_key(path)
    except KeyFileError as e:
        fail(out, ExitCode.KEY, str(e))


def progress_bar(out: Output) -> Progress:
    """The progress display of long commands: on stderr, gone when done."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out.stderr,
        transient=True,
    )
