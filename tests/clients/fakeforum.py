"""A scripted WebSocket peer standing in for the forum (no protocol logic).

Each accepted connection hands the test every frame the client sends (parsed),
and the test answers with whatever frames it wants, or drops the connection.

Deprecated: the project's standard is the real server. The SDK and CLI tests
no longer use this (test_client_sdk.py runs against ``python -m forum`` and
feeds impossible frames to ``Client._handle_frame``); its last user is
test_agent.py. Delete this file once that test runs against the real forum.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.support.timeouts import timeout


class FakeConnection:
    """One client connection: read what the client sent, send it frames, drop it."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.frames: asyncio.Queue[list[Any]] = asyncio.Queue()
        self.closed = asyncio.Event()

    async def recv(self, n: float = 5) -> list[Any]:
        """The next frame the client sent (fails after ``n`` timeout units)."""
        async with asyncio.timeout(timeout(n)):
            return await self.frames.get()

    async def recv_kind(self, kind: str, n: float = 5) -> list[Any]:
        """The next frame of type ``kind``, skipping others."""
        async with asyncio.timeout(timeout(n)):
            while True:
                frame = await self.frames.get()
                if frame[0] == kind:
                    return frame

    async def send(self, *frame: Any) -> None:
        await self.ws.send(orjson.dumps(list(frame)).decode())

    async def send_raw(self, text: str) -> None:
        await self.ws.send(text)

    async def drop(self) -> None:
        """Cut the TCP connection without a closing handshake (like a crashed server)."""
        self.ws.transport.abort()
        await self.closed.wait()


class FakeForum:
    """``async with FakeForum() as forum:`` listens on 127.0.0.1, a free port."""

    def __init__(self) -> None:
        self.connections: asyncio.Queue[FakeConnection] = asyncio.Queue()
        self._server: Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def __aenter__(self) -> FakeForum:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._server = await serve(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1] if not self.port else self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def accept(self, n: float = 10) -> FakeConnection:
        """The next connection the client opens."""
        async with asyncio.timeout(timeout(n)):
            return await self.connections.get()

    async def _handle(self, ws: ServerConnection) -> None:
        conn = FakeConnection(ws)
        await self.connections.put(conn)
        try:
            async for message in ws:
                await conn.frames.put(orjson.loads(message))
        except ConnectionClosed:
            pass
        finally:
            conn.closed.set()
