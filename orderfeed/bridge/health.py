"""Stream health for the trade cycle: the lane's `TradeStreamState` written through
`trading.services.trade_stream`, and the watch that closes a stream silent while orders are open."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from django.db import DatabaseError, close_old_connections

from orderfeed.bridge.core import BridgeCore
from orderfeed.bridge.errors import StreamSilent
from orderfeed.bridge.state import StreamWatch
from trading.selectors.trade_stream import trade_stream_watch_needed
from trading.services.trade_stream import trade_stream_touch

# the package's one logger name, as before the split (log pipelines and tests filter on it)
logger = logging.getLogger("orderfeed.bridge")

TOUCH_SECONDS = 1.0  # stream health is written at most this often while frames arrive


class StreamHealthMixin(BridgeCore):
    """The stream's health, written from the event loop through the worker thread."""

    def _message_seen(self, *, event: bool) -> None:
        watch = self._watch
        watch.last_message = time.monotonic()
        watch.message_at = datetime.now(UTC)
        watch.close = False
        if event:
            watch.event_at = watch.message_at
            watch.events += 1
            self._silence_logged = False
        self._flush_touch()

    def _flush_touch(self, *, force: bool = False) -> None:
        """Write the last frame's time, at most every TOUCH_SECONDS (or now when `force`)."""
        watch = self._watch
        if watch.message_at is None:
            return
        if not force and time.monotonic() - watch.last_touch < TOUCH_SECONDS:
            return
        at, event_at = watch.message_at, watch.event_at
        watch.message_at = watch.event_at = None
        watch.last_touch = time.monotonic()
        self._in_worker(partial(self._health_write, trade_stream_touch, at=at, event_at=event_at))

    def _watch_silence(self) -> None:
        """On every idle poll: write a pending touch; past the max silence, ask the worker (at
        most every few seconds) whether orders are open, and close the stream when it says so."""
        self._flush_touch()
        watch = self._watch
        if watch.close:
            silent = time.monotonic() - watch.last_message
            raise StreamSilent(f"nothing received for {silent:.1f} s with orders open")
        now = time.monotonic()
        if watch.check_pending or now < watch.next_check:
            return
        if now - watch.last_message <= self.max_silence_seconds:
            return
        watch.check_pending = True
        watch.next_check = now + min(self.max_silence_seconds, 5.0)
        self._in_worker(partial(self._silence_check, watch))

    def _silence_check(self, watch: StreamWatch) -> None:
        """In the worker thread: a silent stream is closed only while the lane has open orders
        and the market is open (what makes it unhealthy for the trade cycle)."""
        try:
            needed = trade_stream_watch_needed(account_label=self.lane.label)
        except DatabaseError as exc:
            logger.warning(
                "open-orders check failed", extra={"account": self.lane.label, "error": str(exc)}
            )
            close_old_connections()
            needed = False
        watch.close = needed and time.monotonic() - watch.last_message > self.max_silence_seconds
        watch.check_pending = False

    def _health_write(self, write: Callable[..., Any], **kwargs: Any) -> None:
        """In the worker thread: a stream-health write; a failure must not stop the updates."""
        try:
            write(account_label=self.lane.label, **kwargs)
        except DatabaseError as exc:
            logger.warning(
                "stream health not written", extra={"account": self.lane.label, "error": str(exc)}
            )
            close_old_connections()
