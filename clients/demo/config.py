"""``forum demo``'s knobs: the command's options, the forum's settings and the world's pacing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

FORUM_SETTINGS: Final = {
    # Generous limits: the demo's few connections carry hundreds of agents.
    "FORUM_AUTHOR_RATE": "0",
    "FORUM_ADDRESS_RATE": "0",
    "FORUM_ADDRESS_READ_RATE": "0",
    "FORUM_CONNECTION_FRAME_RATE": "0",
    "FORUM_ADDRESS_UPGRADE_RATE": "0",
    "FORUM_MAX_CONNECTIONS_PER_ADDRESS": "0",
    "FORUM_SUBSCRIBER_QUEUE_FRAMES": "200000",
    # Refit bridging and groups often, so the score stream moves during a short run.
    "FORUM_SCORES_INTERVAL_S": "2",
    "FORUM_SCORES_MIN_NEW_RATINGS": "1000",
    "FORUM_LOG_LEVEL": "warning",
    "FORUM_NAME": "Mycelium demo",
    # Half the default arbitration windows: a short run passes a few thousand seqs.
    "FORUM_ARBITRATION_WINDOW_SCALE": "0.5",
}
"""FORUM_* settings of the demo's forum process (docs/settings.md describes each)."""

PUBLISH_UNTIL: Final = 0.6
"""Proposals are published over the first 60 % of the run (8 of them at the start)."""
FIRST_PROPOSALS: Final = 8
TRIAL_GAP: Final = 0.06
"""Each community starts a trial about every 6 % of the run (jittered)."""
TRIAL_LENGTH: Final = 0.12
"""A trial runs for 12 % of the run before its completed report."""
EXPLORE: Final = 0.5
"""Probability that a community picks a random untried proposal instead of the forum's best-ranked."""
CHECKPOINTS: Final = 12
CALENDAR_START: Final = dt.date(2026, 1, 5)
CALENDAR_DAYS: Final = 730
"""The run's duration stands for two years of community life (dates in outcome reports)."""


@dataclass
class DemoConfig:
    agents: int = 300
    duration: float = 60.0
    seed: int = 0
    connections: int = 4
    feedback: int = 20
    data_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    report: Path | None = None
    live: bool = True
    tick: float = 1.0
    serve: bool = False
    """After the report, keep the forum served (with everything the run wrote) until Ctrl-C."""
    on_report: Callable[[dict[str, Any]], None] | None = None
    """Called with the report as soon as it is ready (before serving on, when ``serve``)."""
