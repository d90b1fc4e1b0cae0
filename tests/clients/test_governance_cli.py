"""``forum reply``, ``amend``, ``adopt``, ``community set`` and ``post --accepts/--forks``
against a real ``forum serve``."""

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


def _run(server: ServeProcess, *args: str) -> tuple[int, list[dict[str, object]], str]:
    result = runner.invoke(app, [*args, "--json"], env={"FORUM_URL": server.ws_url})
    return result.exit_code, [orjson.loads(x) for x in result.stdout.splitlines() if x.strip()], result.stderr


def _ok(server: ServeProcess, *args: str) -> str:
    code, out, err = _run(server, *args)
    assert code == 0, (args, err)
    assert out[0]["accepted"] is True, out
    return str(out[0]["id"])


def test_governance_commands(forum_serve: ServeProcess, tmp_path: Path) -> None:
    alice, bob, town = (str(save_key(derive_key("gov-cli", n), tmp_path / f"{n}.key")) for n in ("alice", "bob", "town"))
    p = _ok(forum_serve, "post", "-k", alice, "--title", "Rotating chair", "--text", "The chair rotates monthly.")
    arg = _ok(forum_serve, "reply", "-k", bob, p, "--stance", "oppose", "--text", "Monthly is *too* often.", "--quote", "monthly")
    _ok(forum_serve, "reply", "-k", alice, arg, "--stance", "question", "--text", "What would you prefer?")
    diff = tmp_path / "change.diff"
    diff.write_text("-The chair rotates monthly.\n+The chair rotates every quarter.\n", encoding="utf-8")
    amendment = _ok(forum_serve, "amend", "-k", bob, p, "--diff-file", str(diff), "--reason", "Less churn.")
    code, _, err = _run(forum_serve, "amend", "-k", alice, p, "--text", "x", "--reason", "mine")
    assert code == ExitCode.REFUSED and "own proposal" in err
    code, _, err = _run(forum_serve, "amend", "-k", bob, p, "--reason", "nothing")
    assert code == ExitCode.USAGE
    v2 = _ok(forum_serve, "post", "-k", alice, "--title", "Rotating chair v2", "--text", "Quarterly.", "--revises", p, "--accepts", amendment)
    _ok(forum_serve, "post", "-k", town, "--title", "Chair by lot", "--text", "Drawn by lot.", "--forks", amendment)
    code, _, err = _run(forum_serve, "adopt", "-k", town, v2, "--start", "2026-04-01")
    assert code == ExitCode.REFUSED and "community profile" in err
    code, _, err = _run(forum_serve, "community", "set", "-k", town, "--name", "Hamlet", "--type", "commune")
    assert code == ExitCode.REFUSED and "x-" in err  # refused locally, before sending, with the forum's words
    _ok(forum_serve, "community", "set", "-k", town, "--name", "Hamlet", "--type", "village", "--size", "300", "--region", "FR-BRE", "--tag", "rural")
    _ok(forum_serve, "adopt", "-k", town, v2, "--start", "2026-04-01", "-p", "term=quarter")
    code, _, err = _run(forum_serve, "adopt", "-k", town, v2, "--start", "2026-04-01", "-p", "oops")
    assert code == ExitCode.USAGE
    code, out, _ = _run(forum_serve, "watch", "--kind", "reply", "--after-seq", "0", "--until-live")
    assert code == 0 and [x["body"]["stance"] for x in out] == ["oppose", "question"]  # type: ignore[index]
