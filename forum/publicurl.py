"""The Host header never reaches a link: every request is seen at the forum's public URL.

:class:`PublicURL` is the outermost ASGI middleware. It rewrites each HTTP and
WebSocket scope's ``Host`` header and scheme to ``public_url`` (setting), or,
when that is unset, to the address the connection was accepted on
(``scope["server"]``, never client-controlled). Everything that builds an
absolute URL from the request (feeds, trailing-slash redirects, ``url_for``)
therefore builds it from the configured base, and a cache keyed by base URL
cannot be poisoned with ``Host: evil.example``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send


class PublicURL:
    def __init__(self, app: ASGIApp, public_url: str | None) -> None:
        self.app = app
        self.scheme: str | None = None
        self.host: bytes | None = None
        if public_url:
            parts = urlsplit(public_url)
            self.scheme, self.host = parts.scheme, parts.netloc.encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = dict(scope)
            if self.host is not None and self.scheme is not None:
                host, scheme = self.host, self.scheme
            else:
                server = scope.get("server")
                scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
                if server is None:
                    host = b"localhost"
                else:
                    name, port = server[0], server[1]
                    name = f"[{name}]" if ":" in str(name) else str(name)
                    default = 443 if scheme == "https" else 80
                    host = (name if port in (None, default) else f"{name}:{port}").encode("ascii")
            if scope["type"] == "websocket":
                scheme = "wss" if scheme == "https" else "ws"
            scope["scheme"] = scheme
            scope["headers"] = [(k, v) for k, v in scope.get("headers", ()) if k != b"host"] + [(b"host", host)]
        await self.app(scope, receive, send)
