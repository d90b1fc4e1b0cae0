"""The errors the SDK and the CLI raise on purpose.

    forum.protocol.errors.MyceliumError
    ├── forum.protocol.errors.ProtocolError      an event is not acceptable; raised *locally*, before
    │   │                               sending, by the forum's own checks (same reason and text
    │   │                               the forum would send)
    │   └── Refused                     the forum answered ``["OK", id, false, "reason: text"]``
    │                                   or closed a subscription for good
    └── ClientError                     everything else that can go wrong on the client side
        ├── KeyFileError                a key file is missing, malformed or unsafe
        │   ├── KeyFileExists           refusing to overwrite an existing key file
        │   └── InsecureKeyFile         group or others may access the key file
        ├── ConnectError                the forum cannot be reached (first connection)
        ├── ClientClosed                the client was closed while an operation was waiting
        └── VerificationFailed          an event received from the forum does not verify

So ``except ProtocolError`` catches a refusal however it was detected, and
``e.reason`` is always one of :data:`forum.protocol.errors.REASONS`.
"""

from __future__ import annotations

from typing import Any

from forum.protocol.errors import REASONS, MyceliumError, ProtocolError, Reason

__all__ = [
    "ClientClosed",
    "ClientError",
    "ConnectError",
    "InsecureKeyFile",
    "KeyFileError",
    "KeyFileExists",
    "Refused",
    "VerificationFailed",
    "split_reason",
]


def split_reason(message: str) -> tuple[Reason, str]:
    """Split a wire ``"reason: text"`` into a known reason and the text.

    An unknown reason (a newer forum) is reported as ``error`` with the whole
    message as its text, so callers can always rely on :data:`REASONS`.
    """
    head, sep, tail = message.partition(":")
    for reason in REASONS:
        if sep and head == reason:
            return reason, tail.strip()
    return "error", message


class Refused(ProtocolError):
    """The forum refused an event (or closed a subscription for good).

    ``reason`` is the machine-readable prefix (``invalid``, ``rate-limited``,
    ``pow``, ...), ``detail`` the rest, ``message`` the full ``"reason: detail"``
    text and ``event_id`` the refused event's id (``None`` for a subscription).
    """

    def __init__(self, reason: Reason, detail: str, event_id: str | None = None) -> None:
        super().__init__(reason, detail)
        self.event_id = event_id

    @classmethod
    def from_message(cls, message: str, event_id: str | None = None) -> Refused:
        reason, detail = split_reason(message)
        return cls(reason, detail, event_id)


class ClientError(MyceliumError):
    """Base class of client-side failures that are not refusals."""


class KeyFileError(ClientError):
    """A key file cannot be used: missing, unreadable, malformed or inconsistent."""


class KeyFileExists(KeyFileError):
    """The key file already exists; keys are never overwritten."""


class InsecureKeyFile(KeyFileError):
    """The key file's permissions let group or others access it (use ``chmod 600``)."""


class InvalidURL(ClientError, ValueError):
    """The URL given to the client is not a ws:// or wss:// URL."""


class ConnectError(ClientError):
    """The forum could not be reached."""


class ClientClosed(ClientError):
    """The client was closed while this operation was still waiting."""


class VerificationFailed(ClientError):
    """An event received from the forum failed verification.

    ``seq`` is its position in the log, ``envelope`` the untrusted envelope as
    received and ``error`` the :class:`ProtocolError` that verification raised.
    """

    def __init__(self, seq: int, envelope: Any, error: ProtocolError) -> None:
        super().__init__(f"event at seq {seq} failed verification: {error.message}")
        self.seq = seq
        self.envelope = envelope
        self.error = error
