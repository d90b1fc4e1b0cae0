"""Forum addresses as people type them: ``http://host:port`` (what ``forum serve`` prints) or
``ws://host:port/ws`` (the WebSocket endpoint), turned into the one each transport needs."""

from __future__ import annotations

import urllib.parse

from clients.sdk.errors import InvalidURL

__all__ = ["http_url", "ws_url"]

_TO_HTTP = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
_TO_WS = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def _split(url: str) -> urllib.parse.SplitResult:
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in _TO_HTTP or not parsed.netloc:
        raise InvalidURL(
            f"not a forum address: {url!r} (expected http://host:port, as `forum serve` "
            "prints it, or ws://host:port/ws)"
        )
    return parsed


def http_url(url: str) -> str:
    """The forum's HTTP base (no trailing slash) from an http(s) or ws(s) address."""
    parsed = _split(url)
    path = parsed.path.rstrip("/")
    if parsed.scheme in ("ws", "wss") and path.endswith("/ws"):
        path = path[: -len("/ws")]
    return urllib.parse.urlunsplit((_TO_HTTP[parsed.scheme], parsed.netloc, path, "", ""))


def ws_url(url: str) -> str:
    """The forum's WebSocket endpoint from an http(s) base or a ws(s) URL (kept as given)."""
    parsed = _split(url)
    if parsed.scheme in ("ws", "wss"):
        return url.strip()
    path = parsed.path.rstrip("/")
    path = path if path.endswith("/ws") else path + "/ws"
    return urllib.parse.urlunsplit((_TO_WS[parsed.scheme], parsed.netloc, path, parsed.query, ""))
