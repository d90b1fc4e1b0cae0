"""A small keep-alive HTTP/1.1 client on asyncio streams (GET and POST), for the bench.

httpx2 is a development dependency of this project, not a runtime one, and a
load generator wants as little per-request overhead as it can get; this
reads ``Content-Length`` and chunked bodies, which is all a forum sends.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class HttpError(Exception):
    pass


class HttpConnection:
    """One persistent connection to ``base`` (http://host:port); reconnects when the server closes it."""

    def __init__(self, base: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(base)
        if parts.scheme != "http":
            raise ValueError(f"the bench speaks plain http:// only, not {base!r}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self.host, self.port, limit=1 << 22
        )

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (OSError, ConnectionError):
                pass
            self._writer = None

    async def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = "application/json"
    ) -> Response:
        async with asyncio.timeout(self.timeout):
            for attempt in (0, 1):
                if self._writer is None:
                    await self._connect()
                try:
                    return await self._request(method, path, body, content_type)
                except (ConnectionError, asyncio.IncompleteReadError, HttpError):
                    await self.close()
                    if attempt:
                        raise
        raise AssertionError("unreachable")

    async def get(self, path: str) -> Response:
        return await self.request("GET", path)

    async def _request(self, method: str, path: str, body: bytes, content_type: str) -> Response:
        assert self._reader is not None and self._writer is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUser-Agent: forum-bench\r\n"
        if body or method == "POST":
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        self._writer.write(head.encode("latin-1") + b"\r\n" + body)
        reader = self._reader
        status_line = await reader.readline()
        if not status_line:
            raise HttpError("the server closed the connection")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HttpError(f"bad status line {status_line[:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            data = b"".join(chunks)
        elif "content-length" in headers:
            data = await reader.readexactly(int(headers["content-length"]))
        elif status in (204, 304) or method == "HEAD":
            data = b""
        else:
            data = await reader.read()
            await self.close()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, headers, data)


async def get(base: str, path: str, *, time_limit: float = 30.0) -> Response:
    conn = HttpConnection(base, timeout=time_limit)
    try:
        return await conn.get(path)
    finally:
        await conn.close()
