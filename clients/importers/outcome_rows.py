"""Read outcome reports from CSV or JSON: one outcome event per row.

CSV columns (a header row is required; unknown columns are an error):

===========================  =======================================================
``proposal``                 id of the proposal tried (required)
``status``                   ``planned``, ``running``, ``completed`` or ``abandoned`` (required)
``verdict``                  ``success``, ``failure``, ``mixed``, ``inconclusive``; empty for none
``period_start``             first day, ``YYYY-MM-DD`` (required)
``period_end``               last day, ``YYYY-MM-DD``; empty while still running
``summary``                  what happened, in words
``evidence``                 links (http/https), separated by spaces
``created_at``               optional, milliseconds since the epoch; fixing it makes
                             re-publishing the same file idempotent (same ids)
``metric_name`` ...          one metric: ``metric_name``, ``metric_unit``,
                             ``metric_baseline``, ``metric_observed`` (empty: not yet
                             measured), ``metric_n``, ``metric_higher_is_better``
                             (true/false/yes/no/1/0); more metrics as ``metric2_name``,
                             ``metric2_unit`` ... A metric whose name cell is empty is skipped.
===========================  =======================================================

JSON: an array of objects, or one object per line (NDJSON), each an outcome
body as the protocol defines it (``proposal``, ``status``, ``verdict``,
``period: {start, end}``, ``metrics: [...]``, ``summary``, ``evidence``),
plus optional ``created_at``. Absent optional fields default to empty.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import orjson

__all__ = ["RowError", "read_outcome_rows"]

Format = Literal["csv", "json"]

BASE_COLUMNS: Final = (
    "proposal",
    "status",
    "verdict",
    "period_start",
    "period_end",
    "summary",
    "evidence",
    "created_at",
)
METRIC_FIELDS: Final = ("name", "unit", "baseline", "observed", "n", "higher_is_better")
_METRIC_COLUMN = re.compile(r"^metric(\d*)_(name|unit|baseline|observed|n|higher_is_better)$")
_BODY_KEYS: Final = frozenset(
    {"proposal", "status", "verdict", "period", "metrics", "summary", "evidence", "created_at"}
)
_TRUE = {"true", "yes", "1", "y", "t"}
_FALSE = {"false", "no", "0", "n", "f"}


class RowError(ValueError):
    """A row cannot be turned into an outcome; ``row`` counts from 1 (the header is row 0 in CSV)."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(f"row {row}: {message}")
        self.row = row


def read_outcome_rows(text: str, fmt: Format) -> list[dict[str, Any]]:
    """Parse ``text``; each result is keyword arguments for :func:`clients.sdk.builders.outcome`."""
    if fmt == "csv":
        return _from_csv(text)
    return _from_json(text)


# --------------------------------------------------------------------------- CSV


def _from_csv(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    header = reader.fieldnames or []
    if not header:
        raise RowError(0, "the CSV file is empty (a header row is required)")
    unknown = [c for c in header if c not in BASE_COLUMNS and not _METRIC_COLUMN.match(c)]
    if unknown:
        raise RowError(0, f"unknown column {unknown[0]!r}")
    for required in ("proposal", "status", "period_start"):
        if required not in header:
            raise RowError(0, f"missing required column {required!r}")
    rows = []
    try:
        for number, record in enumerate(reader, start=1):
            if None in record:
                raise RowError(number, "more cells than columns")
            if all(not (v or "").strip() for v in record.values()):
                continue  # blank line
            rows.append(_csv_row(number, record))
    except csv.Error as e:
        raise RowError(reader.line_num, f"malformed CSV: {e}") from None
    return rows


def _csv_row(number: int, record: Mapping[str, str | None]) -> dict[str, Any]:
    cell = {k: (v or "").strip() for k, v in record.items()}
    row: dict[str, Any] = {
        "proposal": cell["proposal"],
        "status": cell["status"],
        "verdict": cell.get("verdict") or None,
        "period_start": cell["period_start"],
        "period_end": cell.get("period_end") or None,
        "summary": cell.get("summary", ""),
        "evidence": cell.get("evidence", "").split(),
        "metrics": _csv_metrics(number, cell),
    }
    if cell.get("created_at"):
        row["created_at"] = _int(number, "created_at", cell["created_at"])
    return row


def _csv_metrics(number: int, cell: Mapping[str, str]) -> list[dict[str, Any]]:
    groups: dict[int, dict[str, str]] = {}
    for column, value in cell.items():
        if m := _METRIC_COLUMN.match(column):
            groups.setdefault(int(m.group(1) or 1), {})[m.group(2)] = value
    metrics = []
    for index in sorted(groups):
        group = groups[index]
        if not group.get("name"):
            continue
        prefix = "metric" if index == 1 else f"metric{index}"
        missing = [f for f in METRIC_FIELDS if f not in group]
        if missing:
            raise RowError(number, f"metric {group['name']!r} has no column {prefix}_{missing[0]}")
        metrics.append(
            {
                "name": group["name"],
                "unit": group["unit"],
                "baseline": _float(number, f"{prefix}_baseline", group["baseline"]),
                "observed": None
                if group["observed"] == ""
                else _float(number, f"{prefix}_observed", group["observed"]),
                "n": _int(number, f"{prefix}_n", group["n"]),
                "higher_is_better": _bool(
                    number, f"{prefix}_higher_is_better", group["higher_is_better"]
                ),
            }
        )
    return metrics


def _float(number: int, column: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise RowError(number, f"{column} must be a number, not {value!r}") from None


def _int(number: int, column: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise RowError(number, f"{column} must be a whole number, not {value!r}") from None


def _bool(number: int, column: str, value: str) -> bool:
    v = value.lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise RowError(number, f"{column} must be true or false, not {value!r}")


# --------------------------------------------------------------------------- JSON


def _from_json(text: str) -> list[dict[str, Any]]:
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = orjson.loads(stripped)
        except orjson.JSONDecodeError as e:
            raise RowError(0, f"not valid JSON: {e}") from None
    else:
        items = list(_ndjson(text))
    return [_json_row(number, item) for number, item in enumerate(items, start=1)]


def _ndjson(text: str) -> Iterable[Any]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise RowError(number, f"not valid JSON: {e}") from None


def _json_row(number: int, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise RowError(number, "each row must be a JSON object (an outcome body)")
    if unknown := sorted(item.keys() - _BODY_KEYS):
        raise RowError(number, f"unknown field {unknown[0]!r}")
    for required in ("proposal", "status", "period"):
        if required not in item:
            raise RowError(number, f"missing field {required!r}")
    period = item["period"]
    if not isinstance(period, dict) or "start" not in period or period.keys() - {"start", "end"}:
        raise RowError(number, 'period must be an object {"start": "YYYY-MM-DD", "end": ...}')
    evidence = item.get("evidence", [])
    if not isinstance(evidence, list):
        raise RowError(number, "evidence must be a list of links")
    metrics = item.get("metrics", [])
    if not isinstance(metrics, list) or not all(isinstance(m, dict) for m in metrics):
        raise RowError(number, "metrics must be a list of objects")
    row: dict[str, Any] = {
        "proposal": item["proposal"],
        "status": item["status"],
        "verdict": item.get("verdict"),
        "period_start": period["start"],
        "period_end": period.get("end"),
        "summary": item.get("summary", ""),
        "evidence": evidence,
        "metrics": metrics,
    }
    if "created_at" in item:
        row["created_at"] = item["created_at"]
    return row
