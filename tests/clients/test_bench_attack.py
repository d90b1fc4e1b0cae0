"""``forum bench attack``: k fresh keys against a simulated forum scored by the forum's
own code.  Small k here (the full run, k up to 500, is in docs/raters.md)."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from clients.bench.attack import attack, honest_forum, publish
from clients.cli import app
from clients.cli.kit import ExitCode


def test_honest_forum_labels_tell_the_truth() -> None:
    base = honest_forum()
    views = publish(base)
    assert {views[t]["bridging"]["status"] for t in base.consensus} == {"bridging"}
    assert {views[t]["bridging"]["status"] for t in base.partisan} == {"split"}
    assert {views[t]["bridging"]["status"] for t in base.rejected} == {"rejected"}
    cost = next(m for m in views[base.consensus[0]]["outcomes"]["metrics"] if m["name"] == "cost")
    assert 0.18 <= cost["mean"] <= 0.24 and cost["reports"] == 3 and cost["i2"] is not None


def test_the_issue_cliff_is_gone() -> None:
    """60 fresh keys rating one target -1 used to switch standing off forum-wide."""
    base = honest_forum()
    before = publish(base)
    after = publish(attack(base, "one", 60))
    assert after["__fitted__"]["standing_applied"]
    for t in base.consensus + base.partisan + base.rejected:
        assert after[t]["bridging"]["status"] == before[t]["bridging"]["status"]
        assert abs(after[t]["protected"]["shrunk_mean"] - before[t]["protected"]["shrunk_mean"]) < 0.1
    # the raw mean of the attacked target is moved, and published as such
    t0 = base.consensus[0]
    assert after[t0]["mean"] < before[t0]["mean"] - 0.5


def test_cli_json_report_and_targets(tmp_path: Path) -> None:
    out = tmp_path / "attack.json"
    res = CliRunner().invoke(
        app, ["bench", "attack", "--k", "20", "--attack", "set", "--attack", "outcome", "--attack", "author", "--json", "--json-file", str(out)]
    )
    assert res.exit_code == 0, res.output
    report = orjson.loads(res.stdout.strip().splitlines()[-1])
    assert report == orjson.loads(out.read_bytes())
    assert all(report["targets_met"].values())
    rows = {(r["attack"], r["k"]): r for r in report["results"]}
    assert rows[("set", 20)]["consensus_lost_status"] == 0 and rows[("set", 20)]["standing_applied"]
    assert rows[("set", 20)]["max_move"]["mean"] > 0.3  # the attack did something to raw means
    assert rows[("set", 20)]["max_move"]["protected_mean"] < 0.1
    assert rows[("outcome", 20)]["outcome_inside_honest_range"] and rows[("author", 1)]["outcome_cost"]["reports"] == 3
    res = CliRunner().invoke(app, ["bench", "attack", "--attack", "nope"])
    assert res.exit_code == ExitCode.USAGE


def test_cli_constants_match_the_bench() -> None:
    from clients.bench import attack as bench
    from clients.cli.commands import bench_attack as cli

    assert (cli.ATTACKS, cli.KS) == (bench.ATTACKS, bench.KS)
