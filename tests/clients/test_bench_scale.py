"""``forum bench scale --data-dir``: a log filled once and measured from a copy, and
``forum bench plot`` drawing the report (a real forum, tiny sizes)."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path

import orjson
from typer.testing import CliRunner

from clients.cli import app
from clients.cli.kit import ExitCode

SVG = "{http://www.w3.org/2000/svg}"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_prepared_data_directory_is_filled_once_and_never_written(tmp_path: Path) -> None:
    data, report = tmp_path / "prepared", tmp_path / "scale.json"
    runner = CliRunner()
    args = ["bench", "scale", "--sizes", "1500", "--measure", "500", "--requests", "2", "--authors", "40", "--data-dir", str(data)]
    res = runner.invoke(app, [*args, "--prepare-only", "-q"])
    assert res.exit_code == 0, res.output
    fill = orjson.loads((data / "fill.json").read_bytes())
    assert fill["ratings"] == 1000 and fill["accepted"] == 1040  # 40 profiles, then the ratings
    db = data / "forum" / "forum.db"
    before = _digest(db)

    res = runner.invoke(app, [*args, "--json-file", str(report), "-q"])
    assert res.exit_code == 0, res.output
    assert _digest(db) == before and sorted(p.name for p in data.iterdir()) == ["fill.json", "forum"]
    rep = orjson.loads(report.read_bytes())
    assert rep["server"]["seed"]["data_dir"] == str(data)
    (row,) = rep["results"]["sizes"]
    assert row["fill"]["mode"] == "prepared" and row["fill"]["prepared"]["ratings"] == 1000
    assert "secret" not in row["fill"]["prepared"]
    assert row["head_seq"] == 1540 and row["ingest"]["errors"] == {}  # the measured ratings continued the pairs: none refused
    assert row["restart"]["scores_ready_s"] is not None and row["restart"]["listening_cpu_s"] > 0
    assert row["restart"]["restored_from_state_file"] and row["restart"]["state_file_seq"] >= 1040
    assert set(row["loadavg"]) == {"measure_start", "measure_end", "restart_end"}

    res = runner.invoke(app, ["bench", "scale", "--sizes", "2000", "--measure", "500", "--authors", "40", "--data-dir", str(data)])
    assert res.exit_code == ExitCode.USAGE and "--sizes 1500" in res.output  # the directory holds another size

    charts = tmp_path / "charts"
    res = runner.invoke(app, ["bench", "plot", str(report), "--out", str(charts)])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in charts.iterdir())
    assert names == ["growth-ingest-cpu.svg", "growth-ingest.svg", "growth-pages.svg", "growth-restart.svg", "growth-score-update.svg"]
    restart = ET.parse(charts / "growth-restart.svg").getroot()
    tips = [c.find(f"{SVG}title").text for c in restart.iter(f"{SVG}circle")]  # type: ignore[union-attr]
    assert len(tips) == 3 and all("at 1,500 events" in t for t in tips if t)
    assert f"listening: {row['restart']['listening_s']:g}" in tips[0]  # type: ignore[operator]
