"""``forum serve``: run a forum."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from clients.cli.kit import ExitCode, Output, fail, needs

app = typer.Typer()
"""This module's commands; :mod:`clients.cli.app` adds them to the ``forum`` command."""


@app.command(rich_help_panel="Forum")
def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on \\[env FORUM_HOST; default 127.0.0.1]."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port to listen on; 0 picks a free one \\[env FORUM_PORT; default 8000]."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Directory for the SQLite database and other state "
            "\\[env FORUM_DATA_DIR; default ./forum-data].",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy database URL, e.g. postgresql+asyncpg://user:pass@host/db "
            "\\[env FORUM_DATABASE_URL; default SQLite in the data directory].",
        ),
    ] = None,
) -> None:
    """Run a forum until interrupted.

    Prints "Mycelium listening on http://HOST:PORT" once it accepts
    connections (WebSocket at /ws, HTTP API at /api/v1). Every other setting
    comes from FORUM_* environment variables (see docs/settings.md).
    Needs the server extra: pip install 'mycelium-forum\\[server]'.
    """
    out = Output(False)
    with needs(out, "server", "forum serve"):
        from forum.server import APP, run
        from forum.settings import Settings

        importlib.import_module(APP.partition(":")[0])  # the public web, composed by name
    given: dict[str, Any] = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "database_url": database_url,
    }
    try:
        settings = Settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors(include_url=False)
        )
        fail(out, ExitCode.USAGE, f"invalid settings: {problems}")

    try:
        run(settings)
    except OSError as e:  # typically: the port is taken
        fail(
            out,
            ExitCode.USAGE,
            f"cannot serve on {settings.host}:{settings.port}: {e.strerror or e}",
        )
    except KeyboardInterrupt:
        pass
