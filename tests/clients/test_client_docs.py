"""docs/sdk.md covers the CLI: every flag of every client command, and every exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer

from clients.cli import app
from clients.cli.kit import ExitCode

SDK_DOC = (Path(__file__).resolve().parents[2] / "docs" / "sdk.md").read_text(encoding="utf-8")


def _walk(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf command of the app, so a new command fails here until it is documented."""
    subs = getattr(cmd, "commands", None)
    if not subs:
        return [path]
    return [p for name, sub in sorted(subs.items()) for p in _walk(sub, (*path, name))]


COMMANDS = _walk(typer.main.get_command(app))


def _command(path: tuple[str, ...]) -> Any:
    """The (typer-vendored) click command at ``path``."""
    cmd: Any = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_flag_is_documented(path: tuple[str, ...]) -> None:
    assert f"forum {' '.join(path)}" in SDK_DOC
    for param in _command(path).params:
        for opt in [*param.opts, *param.secondary_opts]:
            if opt.startswith("--") and opt != "--help":
                assert f"`{opt}" in SDK_DOC, (
                    f"{opt} of forum {' '.join(path)} is not in docs/sdk.md"
                )


@pytest.mark.parametrize("code", list(ExitCode), ids=lambda c: c.name)
def test_every_exit_code_is_documented(code: ExitCode) -> None:
    assert f"| {int(code)} |" in SDK_DOC
