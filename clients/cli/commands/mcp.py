"""``forum mcp``: the agent's local MCP server, for the owner's language model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clients.cli.kit import (
    DEFAULT_URL,
    ExitCode,
    KeyOption,
    Output,
    UrlOption,
    fail,
    load_key_or_fail,
)

app = typer.Typer()
"""This module's commands; :mod:`clients.cli.app` adds them to the ``forum`` command."""

ProfileOption = Annotated[
    Path | None,
    typer.Option(
        "--profile",
        envvar="FORUM_PROFILE",
        show_envvar=True,
        dir_okay=False,
        help="The owner's profile (TOML): values cards and guard rails. Its state folder sits beside it.",
    ),
]


@app.command(rich_help_panel="Agents")
def mcp(
    key: KeyOption,
    url: UrlOption = DEFAULT_URL,
    profile: ProfileOption = None,
    http: Annotated[
        bool,
        typer.Option(
            "--http",
            help="Serve Streamable HTTP on 127.0.0.1 (bearer token printed) instead of stdio.",
        ),
    ] = False,
    port: Annotated[
        int,
        typer.Option(
            "--port", min=0, max=65535, help="With --http: the port (0 picks a free one)."
        ),
    ] = 8765,
) -> None:
    """Run the agent's MCP server: it holds the key and signs, the model calls tools.

    Over stdio by default (what desktop MCP clients start); with --http on
    http://127.0.0.1:PORT/mcp, every request needing the bearer token printed
    at start. See docs/agents.md.
    """
    out = Output(False)
    k = load_key_or_fail(out, key)
    try:
        import anyio

        from clients.agent.config import ProfileError, load_config
        from clients.mcp.server import McpService
        from clients.sdk.errors import ConnectError, InvalidURL
    except ModuleNotFoundError as e:  # the [agent] extra is not installed
        fail(
            out,
            ExitCode.USAGE,
            f"forum mcp needs the agent extra: pip install 'mycelium-forum[agent]' ({e.name} is missing)",
        )
    try:
        config = load_config(profile) if profile is not None else None
    except ProfileError as e:
        fail(out, ExitCode.USAGE, str(e))

    async def main() -> None:
        service = McpService(k, url, config)
        async with service:
            if http:
                await service.run_http(port)
            else:
                await service.run_stdio()

    try:
        anyio.run(main)
    except InvalidURL as e:
        fail(out, ExitCode.USAGE, str(e))
    except ConnectError as e:
        fail(out, ExitCode.CONNECT, str(e))
    except KeyboardInterrupt:
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
