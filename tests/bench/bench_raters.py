"""Benchmark of the raters package: a thin wrapper around :mod:`clients.bench.raters`.

Run: ``python tests/bench/bench_raters.py [--json FILE]`` (prints a JSON report), or
``forum bench raters`` (progress bar, same report), or call :func:`run_bench`.  The
Polis section reads the conversations in ``tests/data/polis``.  Sections and figures:
see :mod:`clients.bench.raters` and docs/raters.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from clients.bench import raters as _bench  # noqa: E402
from clients.bench.raters import Progress, bench_bridging, bench_groups  # noqa: E402, F401

POLIS_DIR = ROOT / "tests" / "data" / "polis"


def bench_polis(progress: Progress = None) -> dict[str, Any]:
    """Opinion groups on the Polis conversations in tests/data/polis (and red-dwarf's)."""
    return _bench.bench_polis(POLIS_DIR, progress)


def run_bench(progress: Progress = None) -> dict[str, Any]:
    """Every section at full size, Polis from tests/data/polis; the JSON-ready report."""
    return _bench.run_bench(progress, polis_dir=POLIS_DIR)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the report; ``--json FILE`` also writes it to FILE."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--json", metavar="FILE", help="also write the JSON report to FILE")
    args = ap.parse_args(argv)
    report = run_bench(progress=lambda m: print(m, file=sys.stderr, flush=True))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
