"""Publishing helpers shared by ``post``, ``rate`` and ``outcome publish``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rich.console import Group
from rich.json import JSON
from rich.text import Text

from clients.cli.kit import ExitCode, Output, fail, safe_text
from clients.sdk.builders import SignedEvent
from clients.sdk.client import Client, PublishResult


def show_signed(out: Output, signed: SignedEvent, *, label: str = "would publish") -> None:
    """What ``--dry-run`` prints: the id and the exact envelope that would be sent."""
    out.emit(
        {"dry_run": True, "id": signed.id, "kind": signed.kind, "envelope": signed.envelope},
        Group(
            Text.assemble((f"{label} {signed.kind} ", "bold"), (signed.id, "cyan")),
            JSON(signed.payload),  # rendered as data; nothing in it is interpreted as markup
            Text(f"sig {signed.sig}", style="dim"),
        ),
    )


def show_result(out: Output, result: PublishResult, kind: str) -> None:
    """One line per publish: accepted, duplicate or refused."""
    data = {
        "id": result.id,
        "kind": kind,
        "accepted": result.accepted,
        "duplicate": result.duplicate,
        "message": result.message,
    }
    if result.duplicate:
        human = Text.assemble(("already published ", "yellow"), f"{kind} ", (result.id, "cyan"))
    elif result.accepted:
        human = Text.assemble(("published ", "green"), f"{kind} ", (result.id, "cyan"))
    else:
        human = Text.assemble(
            ("refused ", "bold red"),
            f"{kind} ",
            (result.id, "cyan"),
            f": {safe_text(result.message)}",
        )
    out.emit(data, human)


async def publish_one(url: str, signed: SignedEvent, seconds: float) -> PublishResult:
    """Connect, publish, wait for the OK (raises Refused, ConnectError or TimeoutError)."""
    async with asyncio.timeout(seconds), Client(url) as client:
        return await client.publish(signed)


def publish_and_report(out: Output, url: str, signed: SignedEvent, timeout: float) -> None:
    """Publish one event and print the result (the caller wraps this in ``reporting``)."""
    result = asyncio.run(publish_one(url, signed, timeout))
    show_result(out, result, signed.kind)


def exit_if_refused(out: Output, results: Sequence[PublishResult]) -> None:
    """Exit 1 if any of ``results`` was refused."""
    refused = [r for r in results if not (r.accepted or r.duplicate)]
    if refused:
        fail(out, ExitCode.REFUSED, f"the forum refused {len(refused)} of {len(results)} events")
