"""The fan-out load generator's own ceiling: a minimal WebSocket server that only relays.

``forum bench fanout --generator-ceiling`` runs the same publisher and
subscriber processes against this server instead of a forum. It keeps no log,
checks nothing and stores nothing: a PUBLISH gets an OK at once (the event id
is the SHA-256 of the payload) and its envelope, serialized once, goes to every
subscription as the forum's EVENT frame (``["EVENT",sub_id,seq,envelope]``,
server frames unmasked), the events of one loop pass in one write per
connection, as the forum's sender writes what its outbox holds. What the report then shows
is what the client side (subscriber processes parsing frames, the publisher
pacing) can absorb on this machine: if the forum's figures are close to these,
the generator is the limit, not the forum.

Run as ``python -m clients.bench.blast``; it prints ``Mycelium listening on
http://127.0.0.1:PORT`` (the line :class:`clients.launch.ForumProcess` waits
for) and answers ``GET /healthz`` with the head seq, anything else over HTTP
with 404.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import sys

import orjson

try:  # the C implementation when websockets has it
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover
    from websockets.utils import apply_mask

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def server_frame(data: bytes, opcode: int = 0x1) -> bytes:
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + data


class Relay:
    def __init__(self) -> None:
        self.seq = 0
        self.subs: dict[Conn, list[bytes]] = {}  # connection -> its sub ids, JSON-encoded
        self.pending: list[bytes] = []  # EVENT frame tails (after the sub id) of this loop pass
        self.flush_scheduled = False

    def publish(self, tail: bytes) -> None:
        """Queue an event for every subscription; one write per connection per loop pass (as the forum)."""
        self.pending.append(tail)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        tails, self.pending, self.flush_scheduled = self.pending, [], False
        for conn, sub_ids in list(self.subs.items()):
            conn._write(b"".join(server_frame(b'["EVENT",' + sid + tail) for tail in tails for sid in sub_ids))


class Conn(asyncio.Protocol):
    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.buf = bytearray()
        self.ws = False
        self.t: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.t = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.subs.pop(self, None)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.ws:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self._http(bytes(self.buf[:end]).decode("latin-1"))
            del self.buf[: end + 4]
        while self.ws and (msg := self._frame()) is not None:
            opcode, payload = msg
            if opcode == 0x1:
                self._message(payload)
            elif opcode == 0x9:
                self._write(server_frame(payload, 0xA))
            elif opcode == 0x8:
                self._write(server_frame(payload[:2], 0x8))
                assert self.t is not None
                self.t.close()
                return

    def _write(self, data: bytes) -> None:
        if self.t is not None and not self.t.is_closing():
            self.t.write(data)

    def _http(self, head: str) -> None:
        lines = head.split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        assert self.t is not None
        if "sec-websocket-key" in headers:
            accept = base64.b64encode(hashlib.sha1(headers["sec-websocket-key"].encode() + GUID).digest()).decode()
            self.t.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n"
            )
            self.ws = True
            return
        path = lines[0].split(" ")[1] if " " in lines[0] else "/"
        if path.startswith("/healthz"):
            body = orjson.dumps({"ok": True, "head_seq": self.relay.seq})
            self.t.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        else:
            self.t.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        self.t.close()

    def _frame(self) -> tuple[int, bytes] | None:
        b = self.buf
        if len(b) < 2:
            return None
        opcode, n, i = b[0] & 0x0F, b[1] & 0x7F, 2
        if n == 126:
            if len(b) < 4:
                return None
            n, i = struct.unpack_from("!H", b, 2)[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, i = struct.unpack_from("!Q", b, 2)[0], 10
        masked = b[1] & 0x80
        if len(b) < i + (4 if masked else 0) + n:
            return None
        if masked:
            mask = bytes(b[i : i + 4])
            payload = apply_mask(bytes(b[i + 4 : i + 4 + n]), mask)
            i += 4
        else:
            payload = bytes(b[i : i + n])
        del b[: i + n]
        return opcode, payload

    def _message(self, payload: bytes) -> None:
        msg = orjson.loads(payload)
        relay = self.relay
        if msg[0] == "SUBSCRIBE":
            relay.subs.setdefault(self, []).append(orjson.dumps(msg[1]))
            self._write(server_frame(orjson.dumps(["LIVE", msg[1], relay.seq])))
        elif msg[0] == "PUBLISH":
            env = msg[1]
            eid = hashlib.sha256(env["payload"].encode()).hexdigest()
            relay.seq += 1
            self._write(server_frame(orjson.dumps(["OK", eid, True, ""])))
            relay.publish(b"," + str(relay.seq).encode() + b"," + orjson.dumps(env) + b"]")


async def serve(host: str = "127.0.0.1", port: int = 0) -> None:
    relay = Relay()
    server = await asyncio.get_running_loop().create_server(lambda: Conn(relay), host, port, backlog=4096)
    sock = server.sockets[0].getsockname()
    print(f"Mycelium listening on http://{sock[0]}:{sock[1]} (generator-ceiling relay)", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":  # pragma: no cover
    asyncio.run(serve(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0))
