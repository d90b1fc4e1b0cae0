"""``forum bench raters``: the raters benchmark from the command line (tiny scale here)."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from clients.bench.raters import bench_steps, polis_conversations
from clients.cli import app
from clients.cli.kit import ExitCode

DATA = Path(__file__).resolve().parents[1] / "data" / "polis"


def test_bench_raters_json_and_file(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    res = CliRunner().invoke(
        app,
        ["bench", "raters", "--scale", "0.01", "--section", "groups", "--section", "bridging",
         "--json", "--json-file", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    report = orjson.loads(res.stdout.strip().splitlines()[-1])
    assert report == orjson.loads(out.read_bytes())
    assert report["scale"] == 0.01 and "polis" not in report
    assert report["bridging_1m"]["n_ratings"] == 10_000 and report["groups_2000x200"]["k"] >= 2


def test_bench_raters_table_and_errors() -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "raters", "--scale", "0.002", "--section", "groups"])
    assert res.exit_code == 0, res.output
    assert "opinion groups" in res.output
    res = runner.invoke(app, ["bench", "raters", "--section", "nope"])
    assert res.exit_code == ExitCode.USAGE


def test_steps_count_the_polis_conversations() -> None:
    assert len(polis_conversations(DATA)) == 6
    assert bench_steps(DATA) == 3 + 1 + 6
    assert bench_steps(None, ("groups",)) == 1
