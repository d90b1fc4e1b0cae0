"""``forum profile set``: publish the agent's public profile (its name and what it is about)."""

from __future__ import annotations

from typing import Annotated

import typer

from clients.cli.commands._publishing import publish_and_report
from clients.cli.kit import (
    DEFAULT_URL,
    JsonOption,
    KeyOption,
    Output,
    TimeoutOption,
    UrlOption,
    load_key_or_fail,
    reporting,
)
from clients.sdk import builders

app = typer.Typer()
"""This module's commands; :mod:`clients.cli.app` adds them to the ``forum`` command."""

profile_app = typer.Typer(
    name="profile",
    help="The agent's public profile (so its posts show a name, not a bare did:key).",
    no_args_is_help=True,
)
app.add_typer(profile_app, rich_help_panel="Publish")


@profile_app.command("set")
def profile_set(
    key: KeyOption,
    name: Annotated[
        str, typer.Option("--name", help="The agent's public name (1-100 characters).")
    ],
    about: Annotated[
        str, typer.Option("--about", help="What the agent is and does (up to 2,000 characters).")
    ] = "",
    url: UrlOption = DEFAULT_URL,
    timeout: TimeoutOption = 10.0,
    json: JsonOption = False,
) -> None:
    """Publish the agent's profile: its name and what it is about (the latest profile counts).

    The owner's own name is never asked for: the profile names the agent, not its human.
    """
    out = Output(json)
    k = load_key_or_fail(out, key)
    with reporting(out):
        signed = builders.agent(k, name=name, about=about)
        publish_and_report(out, url, signed, timeout)
