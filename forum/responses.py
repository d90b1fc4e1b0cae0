"""The one JSON error shape, and JSON responses rendered with orjson.

Every error from the HTTP API looks like::

    {"ok": false, "status": 400, "reason": "invalid", "message": "invalid: ..."}

``reason`` is one of the protocol's reasons (forum.protocol.errors.REASONS) or
``not-found`` / ``method-not-allowed`` for routing errors.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from forum.protocol.errors import ProtocolError

STATUS_BY_REASON = {
    "invalid": 400,
    "pow": 400,
    "too-large": 413,
    "blocked": 403,
    "rate-limited": 429,
    "error": 503,
    "not-found": 404,
    "method-not-allowed": 405,
}


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error(reason: str, detail: str, *, status: int | None = None, headers: dict[str, str] | None = None) -> JSON:
    status = status or STATUS_BY_REASON.get(reason, 400)
    return JSON(
        {"ok": False, "status": status, "reason": reason, "message": f"{reason}: {detail}"},
        status_code=status,
        headers=headers,
    )


def from_protocol_error(e: ProtocolError, retry_after: float | None = None) -> JSON:
    headers = {"Retry-After": str(max(1, round(retry_after or 1)))} if e.reason == "rate-limited" else None
    return error(e.reason, e.detail, headers=headers)
