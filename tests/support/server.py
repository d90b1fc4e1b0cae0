"""The tests' forum process: :class:`clients.launch.ForumProcess` with the tests' timeout unit.

``ForumProcess(data_dir, database_url=None, **settings)`` is ``python -m forum``
on port 0 (or ``port=P``) configured through FORUM_* variables; ``start()``
(again: on the port it had), ``stop()`` (SIGINT), ``kill()`` (SIGKILL to its
process group).
"""

from __future__ import annotations

from pathlib import Path

from clients import launch
from tests.support.timeouts import UNIT


class ForumProcess(launch.ForumProcess):
    def __init__(self, data_dir: Path, database_url: str | None = None, **settings: object) -> None:
        port = int(str(settings.pop("port", 0)))
        super().__init__(
            data_dir, database_url=database_url, port=port, settings=settings, time_unit=UNIT
        )

    def start(self, timeout: float | None = 30.0, *, retry_for: float = 10.0) -> ForumProcess:
        super().start(timeout, retry_for=retry_for)
        return self

    def restart_on_same_port(self) -> ForumProcess:
        """Start again on the port and data it had (retrying while the old socket lingers)."""
        return self.start()
