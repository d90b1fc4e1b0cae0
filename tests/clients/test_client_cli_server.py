"""The ``forum`` commands against a real ``forum serve``: publish, watch, rate, outcomes."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from clients.cli import app
from clients.cli.kit import ExitCode
from clients.sdk.keys import derive_key, save_key
from tests.clients.conftest import ServeProcess

pytestmark = pytest.mark.slow
runner = CliRunner()


def _lines(text: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def _run(server: ServeProcess, *args: str) -> tuple[int, list[dict[str, object]], str]:
    result = runner.invoke(app, [*args, "--json"], env={"FORUM_URL": server.ws_url})
    return result.exit_code, _lines(result.stdout), result.stderr


def test_post_watch_rate_and_outcomes(forum_serve: ServeProcess, tmp_path: Path) -> None:
    alice = str(save_key(derive_key("cli", "alice"), tmp_path / "alice.key"))
    bob = str(save_key(derive_key("cli", "bob"), tmp_path / "bob.key"))
    town = str(save_key(derive_key("cli", "town"), tmp_path / "town.key"))

    code, out, err = _run(
        forum_serve,
        "post",
        "-k",
        alice,
        "--title",
        "Tool library",
        "--text",
        "Share.",
        "--tag",
        "tools",
    )
    assert code == 0, err
    proposal_id = str(out[0]["id"])
    assert out[0]["accepted"] is True

    code, out, err = _run(
        forum_serve, "watch", "--kind", "proposal", "--after-seq", "0", "--until-live"
    )
    assert code == 0, err
    assert [line["id"] for line in out] == [proposal_id]
    assert out[0]["body"]["tags"] == ["tools"]  # type: ignore[index]

    code, out, err = _run(forum_serve, "rate", "-k", bob, proposal_id, "-0.5", "-c", "feasible=0.5")
    assert code == 0, err
    code, out, err = _run(forum_serve, "rate", "-k", alice, proposal_id, "1")
    assert code == ExitCode.REFUSED
    assert "own event" in _lines(err)[0]["error"]  # type: ignore[operator]

    results = tmp_path / "results.csv"
    results.write_text(
        "proposal,status,verdict,period_start,period_end,summary,created_at\n"
        f"{proposal_id},completed,success,2026-01-01,2026-03-01,Lent 40 tools,1700000000000\n",
        encoding="utf-8",
    )
    code, out, err = _run(forum_serve, "outcome", "publish", "-k", town, str(results))
    assert code == ExitCode.USAGE and "no community profile" in err
    args = (
        "outcome",
        "publish",
        "-k",
        town,
        str(results),
        "--community-name",
        "Elm Street",
        "--about",
        "A street",
    )
    code, out, err = _run(forum_serve, *args)
    assert code == 0, err
    assert [(line["kind"], line["accepted"]) for line in out] == [
        ("community", True),
        ("outcome", True),
    ]
    code, out, err = _run(forum_serve, *args)  # the profile exists now; the outcome is a duplicate
    assert code == 0, err
    assert [(line["kind"], line["duplicate"]) for line in out] == [("outcome", True)]

    code, out, err = _run(
        forum_serve, "watch", "--ref", proposal_id, "--after-seq", "0", "--until-live"
    )
    assert sorted(str(line["kind"]) for line in out) == ["outcome", "rating"]
