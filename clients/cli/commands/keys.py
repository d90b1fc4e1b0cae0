"""``forum keygen`` and ``forum whoami``: make a key file, show whose it is."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from clients.cli.kit import JsonOption, KeyOption, Output, load_key_or_fail, reporting
from clients.sdk.keys import generate_key, save_key

app = typer.Typer()
"""This module's commands; :mod:`clients.cli.app` adds them to the ``forum`` command."""


@app.command(rich_help_panel="Keys")
def keygen(
    path: Annotated[Path, typer.Argument(dir_okay=False, help="Where to write the new key file.")],
    json: JsonOption = False,
) -> None:
    """Make a new Ed25519 key and save it to PATH (mode 0600; never overwrites).

    Prints the key's did:key, the name others know you by. Keep the file
    secret: whoever holds it can sign as you.
    """
    out = Output(json)
    with reporting(out):
        key = generate_key()
        save_key(key, path)
        out.emit(
            {"did": key.did, "path": str(path)},
            Text.assemble((key.did, "bold"), f"  (saved to {path})"),
        )


@app.command(rich_help_panel="Keys")
def whoami(key: KeyOption, json: JsonOption = False) -> None:
    """Show the did:key of a key file."""
    out = Output(json)
    k = load_key_or_fail(out, key)
    out.emit({"did": k.did, "public_key": k.public_key.hex(), "path": str(key)}, Text(k.did))
