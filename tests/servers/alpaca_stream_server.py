"""An Alpaca trading-stream (`trade_updates`) stand-in: a real websocket server on 127.0.0.1.

It speaks the protocol alpaca-py's `TradingStream` speaks (alpaca/trading/stream.py):

1. the client sends ``{"action": "authenticate", "data": {"key_id": ..., "secret_key": ...}}``;
   the server answers ``{"stream": "authorization", "data": {"status": "authorized",
   "action": "authenticate"}}`` — or ``"status": "unauthorized"`` and closes the connection
   (code 1008) when the key or secret is wrong;
2. the client sends ``{"action": "listen", "data": {"streams": ["trade_updates"]}}``; the server
   acknowledges with ``{"stream": "listening", "data": {"streams": ["trade_updates"]}}``;
3. every update is then sent as ``{"stream": "trade_updates", "data": {...}}``.

Frames are JSON in **binary** frames, as Alpaca's paper endpoint sends them (the client decodes
either kind with `json.loads`); `binary=False` switches to text frames.

The server runs in a background thread with its own event loop. From the test:
`start()`/`stop()`, `url`, `push(update)` (sent to every listening client; queued until a client
listens when none does — a test convenience, the real stream has no replay), `drop_connections()`
(aborts the TCP connections without a close frame: a network loss), `refuse(n, how)` (the next
`n` connection attempts are refused for too many connections, `refuse(0)` stops it: `how="http"` answers the handshake
with HTTP 429 "connection limit exceeded", `how="frame"` accepts it and answers the
authentication with an error frame saying so, then closes), and the counters `connections`
(websocket handshakes accepted), `auth_attempts`, `listening`, `refused` and `attempt_times`
(`time.monotonic()` of every connection attempt, refused ones included). A connected client that
is sent nothing is a silent stream: the server answers pings and sends no frame until `push`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
import time
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

CONNECTION_LIMIT = "connection limit exceeded"


class AlpacaStreamServer:
    __test__ = False  # not a pytest test class

    def __init__(self, *, key: str = "key", secret: str = "secret", binary: bool = True) -> None:
        self.key, self.secret, self.binary = key, secret, binary
        self.connections = 0
        self.auth_attempts = 0
        self.refused = 0
        self.attempt_times: list[float] = []
        self._refusals: list[str] = []  # how each of the next attempts is refused
        self.pending: list[dict[str, Any]] = []
        self._listeners: set[ServerConnection] = set()
        self._open: set[ServerConnection] = set()
        self._lock = threading.Lock()
        self._send_lock = asyncio.Lock()  # frames leave in push order, backlog first
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- control from the test thread ----------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/stream"

    @property
    def listening(self) -> int:
        """Clients currently subscribed to `trade_updates`."""
        with self._lock:
            return len(self._listeners)

    def start(self) -> AlpacaStreamServer:
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def _listen() -> Server:
            return await serve(self._handle, "127.0.0.1", 0, process_request=self._process_request)

        try:
            self._server = loop.run_until_complete(_listen())
        except BaseException:
            loop.close()
            self._loop = None
            raise
        self._port = int(next(iter(self._server.sockets)).getsockname()[1])
        self._thread = threading.Thread(
            target=loop.run_forever, name="alpaca-stream-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def _close() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(_close(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        loop.close()
        self._loop = self._server = None

    def push(self, *updates: dict[str, Any]) -> None:
        """Send trade updates (the `data` of a frame) to every listening client, in order."""
        self._call(self._broadcast(list(updates)))

    def refuse(self, n: int, how: str = "http") -> None:
        """Refuse the next `n` connection attempts for too many connections (replacing what was
        asked before: `refuse(0)` lets the next attempt in)."""
        assert how in ("http", "frame"), how
        with self._lock:
            self._refusals = [how] * n

    def drop_connections(self) -> int:
        """Abort every open connection (no close frame); returns how many were dropped."""

        async def _drop() -> int:
            dropped = list(self._open)
            for websocket in dropped:
                websocket.transport.abort()
            return len(dropped)

        dropped: int = self._call(_drop())
        return dropped

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None, "start() the server first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=5)

    # -- the event loop's side ------------------------------------------------------------------
    def _frame(self, message: dict[str, Any]) -> str | bytes:
        text = json.dumps(message, separators=(",", ":"))
        return text.encode() if self.binary else text

    async def _broadcast(self, updates: list[dict[str, Any]]) -> None:
        async with self._send_lock:
            with self._lock:
                listeners = list(self._listeners)
                if not listeners:
                    self.pending.extend(updates)
                    return
            await self._send(listeners, updates)

    async def _send(self, listeners: list[ServerConnection], updates: list[dict[str, Any]]) -> None:
        for update in updates:
            frame = self._frame({"stream": "trade_updates", "data": update})
            for websocket in listeners:
                try:
                    await websocket.send(frame)
                except ConnectionClosed:
                    pass

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        with self._lock:
            self.attempt_times.append(time.monotonic())
            if not self._refusals or self._refusals[0] != "http":
                return None
            self._refusals.pop(0)
            self.refused += 1
        return connection.respond(HTTPStatus.TOO_MANY_REQUESTS, f"{CONNECTION_LIMIT}\n")

    async def _refuse_by_frame(self, websocket: ServerConnection) -> bool:
        with self._lock:
            if not self._refusals or self._refusals[0] != "frame":
                return False
            self._refusals.pop(0)
            self.refused += 1
        await websocket.recv()  # the authentication request
        await websocket.send(self._frame({"stream": "error", "data": {"error": CONNECTION_LIMIT}}))
        await websocket.close(1008, CONNECTION_LIMIT)
        return True

    async def _handle(self, websocket: ServerConnection) -> None:
        with self._lock:
            self.connections += 1
        self._open.add(websocket)
        try:
            if await self._refuse_by_frame(websocket):
                return
            if await self._authenticate(websocket):
                async for raw in websocket:
                    await self._on_message(websocket, raw)
        except ConnectionClosed:
            pass
        finally:
            self._open.discard(websocket)
            with self._lock:
                self._listeners.discard(websocket)

    async def _authenticate(self, websocket: ServerConnection) -> bool:
        message = _decode(await websocket.recv())
        data = message.get("data") or {}
        if message.get("action") != "authenticate" or not isinstance(data, dict):
            await websocket.send(
                self._frame({"stream": "error", "data": {"error": "not authenticated"}})
            )
            await websocket.close(1008, "not authenticated")
            return False
        with self._lock:
            self.auth_attempts += 1
        key_ok = hmac.compare_digest(str(data.get("key_id", "")), self.key)
        secret_ok = hmac.compare_digest(str(data.get("secret_key", "")), self.secret)
        authorized = key_ok and secret_ok
        status = "authorized" if authorized else "unauthorized"
        await websocket.send(
            self._frame(
                {"stream": "authorization", "data": {"status": status, "action": "authenticate"}}
            )
        )
        if not authorized:
            await websocket.close(1008, "unauthorized")
        return authorized

    async def _on_message(self, websocket: ServerConnection, raw: str | bytes) -> None:
        message = _decode(raw)
        if message.get("action") != "listen":
            return
        requested = (message.get("data") or {}).get("streams") or []
        streams = [s for s in requested if s == "trade_updates"]
        await websocket.send(self._frame({"stream": "listening", "data": {"streams": streams}}))
        if not streams:
            return
        async with self._send_lock:
            with self._lock:
                self._listeners.add(websocket)
                backlog, self.pending = self.pending, []
            await self._send([websocket], backlog)


def _decode(raw: str | bytes) -> dict[str, Any]:
    message = json.loads(raw)
    return message if isinstance(message, dict) else {}
