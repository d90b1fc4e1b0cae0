"""The exception tree, described in one place.

    MyceliumError                 base of everything this project raises on purpose
    ├── ProtocolError             an event or frame was refused; carries a machine-readable reason
    │   (reasons: invalid, duplicate, rate-limited, pow, too-large, blocked, error)
    └── StorageError              the database refused or failed (wraps the driver's error)

A ProtocolError renders as ``"reason: detail"``, which is exactly the text sent
in ``OK``/``CLOSED`` frames and in the HTTP error shape, so a client can split
on the first colon to get the reason.
"""

from __future__ import annotations

from typing import Final, Literal

Reason = Literal["invalid", "duplicate", "rate-limited", "pow", "too-large", "blocked", "error"]

REASONS: Final[tuple[Reason, ...]] = (
    "invalid",
    "duplicate",
    "rate-limited",
    "pow",
    "too-large",
    "blocked",
    "error",
)


class MyceliumError(Exception):
    """Base class of every error this project raises on purpose."""


class ProtocolError(MyceliumError):
    """An event, frame or request was refused.

    ``reason`` is one of :data:`REASONS`; ``detail`` is human-readable text.
    """

    def __init__(self, reason: Reason, detail: str) -> None:
        if reason not in REASONS:  # pragma: no cover - programming error
            raise ValueError(f"unknown reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail

    @property
    def message(self) -> str:
        """The ``"reason: detail"`` text sent on the wire."""
        return f"{self.reason}: {self.detail}"


def invalid(detail: str) -> ProtocolError:
    """Shorthand for the most common refusal."""
    return ProtocolError("invalid", detail)


class StorageError(MyceliumError):
    """The database failed: the batch it was writing was not committed, or a stored row cannot be read."""
