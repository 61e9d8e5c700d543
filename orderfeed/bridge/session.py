"""The stream session: connect, authenticate, listen, receive; and the connection loop around it
that reconnects with backoff (see the package docstring for the diagram)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from functools import partial
from typing import Any

from alpaca.trading.stream import TradingStream
from websockets.exceptions import InvalidURI

from orderfeed.bridge.backoff import jittered_backoff_seconds
from orderfeed.bridge.config import stream_credentials
from orderfeed.bridge.errors import (
    CONNECTION_LIMIT_TEXT,
    SESSION_ERRORS,
    StreamAuthError,
    StreamProtocolError,
    StreamRateLimited,
    StreamSilent,
    stream_rate_limited,
)
from orderfeed.bridge.health import StreamHealthMixin
from orderfeed.bridge.metrics import (
    BRIDGE_RATE_LIMITED,
    BRIDGE_RECONNECTS,
    BRIDGE_SILENCE_RECONNECTS,
)
from orderfeed.bridge.producer import ProducerMixin
from orderfeed.bridge.state import StreamWatch
from trading.services.trade_stream import trade_stream_connected, trade_stream_disconnected

# the package's one logger name, as before the split (log pipelines and tests filter on it)
logger = logging.getLogger("orderfeed.bridge")

POLL_SECONDS = 1.0  # the receive loop wakes at least this often to serve delivery reports


class SessionMixin(StreamHealthMixin, ProducerMixin):
    """The connection loop and one session's frames."""

    # -- connection loop ---------------------------------------------------------------------------
    async def _connect_loop(self) -> None:
        assert self._stop_event is not None
        failures = 0
        while not self._stop_event.is_set():
            self.stats.attempts += 1
            if self.stats.attempts > 1:
                self.stats.reconnects += 1
                BRIDGE_RECONNECTS.labels(account=self.lane.label).inc()
            connections_before = self.stats.connections
            error: BaseException | None = None
            try:
                stopped = await self._until_stopped(self._session())
            except InvalidURI:
                raise  # a configuration error: retrying cannot help
            except SESSION_ERRORS as exc:
                stopped, error = False, exc
                self._session_lost(exc)
            if stopped or self._stop_event.is_set():
                return
            silent = isinstance(error, StreamSilent)
            if self.stats.connections > connections_before and (not silent or self._watch.events):
                failures = 0  # the session got through: start the backoff over
            failures += 1
            delay = jittered_backoff_seconds(
                failures,
                minimum=self.backoff_min_seconds,
                maximum=self.backoff_max_seconds,
                rng=self._rng,
            )
            if error is not None and stream_rate_limited(error):
                delay += self.rate_limit_backoff_seconds
            self.stats.backoff_seconds.append(delay)
            if await self._wait_stop(delay):
                return

    def _session_lost(self, exc: BaseException) -> None:
        """Count and log why a session ended: a refusal for too many connections, a silence
        (logged once until a trade update comes again), anything else."""
        self.stats.last_error = f"{type(exc).__name__}: {exc}"[:500]
        extra = {"account": self.lane.label, "error": self.stats.last_error}
        if stream_rate_limited(exc):
            self.stats.rate_limited += 1
            BRIDGE_RATE_LIMITED.labels(account=self.lane.label).inc()
            logger.warning("trade-updates stream refused: too many connections", extra=extra)
        elif isinstance(exc, StreamSilent):
            self.stats.silence_reconnects += 1
            BRIDGE_SILENCE_RECONNECTS.labels(account=self.lane.label).inc()
            log = logger.debug if self._silence_logged else logger.warning
            self._silence_logged = True
            log("trade-updates stream silent with orders open: reopening it", extra=extra)
        else:
            log = logger.error if isinstance(exc, StreamAuthError) else logger.warning
            log("trade-updates stream lost", extra=extra)

    async def _until_stopped(self, session: Coroutine[Any, Any, None]) -> bool:
        """Run the session until it ends (returns False, or raises) or stop() (returns True)."""
        assert self._stop_event is not None
        task = asyncio.create_task(session)
        stopper = asyncio.create_task(self._stop_event.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not task.done():
                task.cancel()
            await asyncio.gather(task, stopper, return_exceptions=True)
        if task.cancelled():
            return True
        task.result()  # raises the session's error
        return False

    def _open_stream(self) -> Any:
        api_key, secret_key = stream_credentials(self.lane)
        stream = TradingStream(
            api_key,
            secret_key,
            paper=not self.lane.is_live,
            raw_data=True,
            url_override=self.stream_url or "",  # alpaca-py: falsy = its default
            # alpaca-py's ping_timeout is 180 s; a half-open connection is noticed in 30 s here
            websocket_params={"ping_interval": 10, "ping_timeout": 20, "max_queue": 1024},
        )
        stream.subscribe_trade_updates(self._on_trade_update)
        return stream

    async def _session(self) -> None:
        """One connection: connect, authenticate, listen, then receive until it breaks."""
        stream = self._open_stream()
        self._watch = StreamWatch()
        try:
            await asyncio.wait_for(self._start(stream), self.connect_timeout_seconds)
            await self._receive(stream)
        finally:
            self.stats.connected = False
            if self._watch.connected:
                self._flush_touch(force=True)
                self._in_worker(
                    partial(self._health_write, trade_stream_disconnected, at=datetime.now(UTC))
                )
            await stream.close()

    async def _start(self, stream: Any) -> None:
        """alpaca-py's `_start_ws` (connect, authenticate, listen) with the authorization answer
        read here, so that a refusal for too many connections is told from wrong keys."""
        await stream._connect()
        api_key, secret_key = stream_credentials(self.lane)
        await stream._ws.send(
            json.dumps(
                {"action": "authenticate", "data": {"key_id": api_key, "secret_key": secret_key}}
            )
        )
        raw = await stream._ws.recv()
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        if CONNECTION_LIMIT_TEXT in text.lower():
            raise StreamRateLimited(f"authorization answer: {text:.200}")
        try:
            message = json.loads(text)
        except ValueError as exc:
            raise StreamProtocolError(f"bad authorization answer: {exc}") from exc
        data = message.get("data") if isinstance(message, dict) else None
        if not isinstance(data, dict):
            raise StreamProtocolError(f"bad authorization answer: {text:.200}")
        if data.get("status") != "authorized":
            raise StreamAuthError("failed to authenticate")
        await stream._subscribe_trade_updates()

    async def _receive(self, stream: Any) -> None:
        websocket = stream._ws
        listen_deadline = time.monotonic() + self.connect_timeout_seconds
        listening = False
        while True:
            try:
                raw = await asyncio.wait_for(websocket.recv(), timeout=POLL_SECONDS)
            except TimeoutError:
                self._serve_producer()
                if not listening and time.monotonic() > listen_deadline:
                    raise StreamProtocolError("no `listening` acknowledgement") from None
                if listening:
                    self._watch_silence()
                continue
            try:
                message = json.loads(raw)
            except ValueError as exc:
                raise StreamProtocolError(f"a frame that is not JSON: {exc}") from exc
            if not isinstance(message, dict):
                raise StreamProtocolError(f"a frame that is not an object: {raw!r:.200}")
            if message.get("stream") == "listening":
                self._on_listening(message)
                listening = True
            else:
                self._message_seen(event=message.get("stream") == "trade_updates")
            await stream._dispatch(message)  # trade updates go to `_on_trade_update`
            self._serve_producer()

    def _on_listening(self, message: dict[str, Any]) -> None:
        streams = (message.get("data") or {}).get("streams") or []
        if "trade_updates" not in streams:
            raise StreamProtocolError(f"the stream did not subscribe trade_updates: {message}")
        self.stats.connected = True
        self.stats.connections += 1
        watch = self._watch
        watch.connected = True
        watch.last_message = watch.last_touch = time.monotonic()
        self._in_worker(partial(self._health_write, trade_stream_connected, at=datetime.now(UTC)))
        logger.info(
            "trade-updates stream connected",
            extra={"account": self.lane.label, "connections": self.stats.connections},
        )
        if self.stats.connections > 1:
            # the stream has no replay: what happened while we were away is only at the broker
            self._in_worker(partial(self._reconcile, "reconnect"))

    async def _on_trade_update(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        if not isinstance(data, dict):
            logger.warning(
                "trade update without data", extra={"account": self.lane.label, "frame": message}
            )
            return
        self._produce(data)
