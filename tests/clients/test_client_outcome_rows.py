"""Reading outcome reports from CSV and JSON (pure)."""

from __future__ import annotations

import orjson
import pytest

from clients.importers.outcome_rows import RowError, read_outcome_rows
from clients.sdk import builders
from clients.sdk.keys import derive_key

PROPOSAL = "c" * 64
HEADER = (
    "proposal,status,verdict,period_start,period_end,summary,evidence,"
    "metric_name,metric_unit,metric_baseline,metric_observed,metric_n,metric_higher_is_better,"
    "metric2_name,metric2_unit,metric2_baseline,metric2_observed,metric2_n,metric2_higher_is_better"
)


def test_csv_rows_become_outcome_arguments() -> None:
    text = "\n".join(
        [
            HEADER,
            f"{PROPOSAL},completed,success,2026-01-01,2026-03-01,Worked,https://a.org/x https://b.org/y,"
            "loans,count,10,42,30,true,,,,,,",
            f"{PROPOSAL},running,,2026-04-01,,,,waste,kg,100,,12,no,cost,eur,5,4.5,12,FALSE",
            ",,,,,,,,,,,,,,,,,,",
        ]
    )
    rows = read_outcome_rows(text, "csv")
    assert len(rows) == 2
    first, second = rows
    assert first == {
        "proposal": PROPOSAL,
        "status": "completed",
        "verdict": "success",
        "period_start": "2026-01-01",
        "period_end": "2026-03-01",
        "summary": "Worked",
        "evidence": ["https://a.org/x", "https://b.org/y"],
        "metrics": [
            {
                "name": "loans",
                "unit": "count",
                "baseline": 10.0,
                "observed": 42.0,
                "n": 30,
                "higher_is_better": True,
            }
        ],
    }
    assert second["verdict"] is None and second["period_end"] is None and second["evidence"] == []
    assert [m["name"] for m in second["metrics"]] == ["waste", "cost"]
    assert second["metrics"][0]["observed"] is None
    assert second["metrics"][1]["higher_is_better"] is False
    key = derive_key("tests", "community")
    for row in rows:  # every row signs into a valid outcome
        builders.outcome(key, **row)


def test_created_at_makes_rows_reproducible() -> None:
    text = f"proposal,status,period_start,created_at\n{PROPOSAL},planned,2026-01-01,1700000000000\n"
    (row,) = read_outcome_rows(text, "csv")
    assert row["created_at"] == 1_700_000_000_000
    key = derive_key("tests", "community")
    assert builders.outcome(key, **row).id == builders.outcome(key, **row).id


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("proposal,status,period_start,colour\n", "unknown column 'colour'"),
        ("proposal,status\n", "missing required column 'period_start'"),
        (
            f"proposal,status,period_start\n{PROPOSAL},planned,2026-01-01,extra\n",
            "row 1: more cells",
        ),
        (
            f"proposal,status,period_start,metric_name,metric_unit\n{PROPOSAL},planned,2026-01-01,x,kg\n",
            "row 1: metric 'x' has no column metric_baseline",
        ),
        (
            "proposal,status,period_start,metric_name,metric_unit,metric_baseline,metric_observed,"
            f"metric_n,metric_higher_is_better\n{PROPOSAL},planned,2026-01-01,x,kg,lots,,1,true\n",
            "metric_baseline must be a number",
        ),
        (
            "proposal,status,period_start,metric_name,metric_unit,metric_baseline,metric_observed,"
            f"metric_n,metric_higher_is_better\n{PROPOSAL},planned,2026-01-01,x,kg,1,,1,maybe\n",
            "must be true or false",
        ),
        (
            f"proposal,status,period_start,created_at\n{PROPOSAL},planned,2026-01-01,soon\n",
            "whole number",
        ),
    ],
)
def test_csv_errors_name_the_row_and_column(text: str, message: str) -> None:
    with pytest.raises(RowError, match=message):
        read_outcome_rows(text, "csv")


def test_json_array_and_ndjson_rows() -> None:
    body = orjson.dumps(
        {
            "proposal": PROPOSAL,
            "status": "completed",
            "verdict": "mixed",
            "period": {"start": "2026-01-01", "end": "2026-02-01"},
            "metrics": [
                {
                    "name": "n",
                    "unit": "",
                    "baseline": 1,
                    "observed": 2,
                    "n": 3,
                    "higher_is_better": True,
                }
            ],
            "summary": "s",
            "evidence": [],
        }
    ).decode()
    as_array = read_outcome_rows(f"[{body}, {body}]", "json")
    as_lines = read_outcome_rows(f"{body}\n\n{body}\n", "json")
    assert as_array == as_lines
    assert as_array[0]["period_start"] == "2026-01-01" and as_array[0]["verdict"] == "mixed"
    builders.outcome(derive_key("tests", "community"), **as_array[0])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1]", "row 1: each row must be a JSON object"),
        ('{"proposal": "x"}', "missing field 'status'"),
        ('{"proposal": "x", "status": "planned", "period": "2026"}', "period must be an object"),
        (
            '{"proposal": "x", "status": "planned", "period": {"start": "a", "x": 1}}',
            "period must be",
        ),
        (
            '{"proposal": "x", "status": "planned", "period": {"start": "a"}, "colour": 1}',
            "unknown field",
        ),
        (
            '{"proposal": "x", "status": "planned", "period": {"start": "a"}, "evidence": "u"}',
            "evidence",
        ),
        (
            '{"proposal": "x", "status": "planned", "period": {"start": "a"}, "metrics": [1]}',
            "metrics",
        ),
        ("[not json", "not valid JSON"),
        ('{"ok": 1}\n{broken', "row 2: not valid JSON"),
    ],
)
def test_json_errors(text: str, message: str) -> None:
    with pytest.raises(RowError, match=message):
        read_outcome_rows(text, "json")
