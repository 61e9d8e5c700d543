"""`TradeUpdatesBridge` (one lane, built from settings, run until stopped) and
`TradeUpdatesBridges` (one thread per lane)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.db import connections as db_connections

from orderfeed.bridge.config import (
    bridge_lane_labels,
    bridge_topic,
    reconcile_trigger,
    stream_credentials,
)
from orderfeed.bridge.errors import BridgeNotConfigured
from orderfeed.bridge.session import SessionMixin
from orderfeed.bridge.state import BridgeStats
from torghut_site.kafka.config import producer_config
from torghut_site.kafka.topics import topics_require
from torghut_site.services import heartbeat_record
from trading.lanes import UnknownLaneError, lane_config

# the package's one logger name, as before the split (log pipelines and tests filter on it)
logger = logging.getLogger("orderfeed.bridge")

HEARTBEAT_KIND = "trade_updates_bridge"
FLUSH_TIMEOUT_SECONDS = 10.0


class TradeUpdatesBridge(SessionMixin):
    """Bridges one lane's trade updates to Kafka until `stop()` (or `max_updates`)."""

    @classmethod
    def for_lane(
        cls,
        account_label: str,
        *,
        stream_url: str | None = None,
        reconcile: Callable[[str], None] = reconcile_trigger,
        max_updates: int | None = None,
    ) -> TradeUpdatesBridge:
        """A bridge configured from settings; raises `BridgeNotConfigured` when it cannot run."""
        if not settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS:
            raise BridgeNotConfigured(
                "TRADING_ORDER_FEED_BOOTSTRAP_SERVERS is empty: the bridge has no Kafka to "
                "produce to"
            )
        try:
            lane = lane_config(account_label)
        except UnknownLaneError as exc:
            raise BridgeNotConfigured(str(exc)) from exc
        if lane.broker != "alpaca":
            raise BridgeNotConfigured(
                f"lane {lane.label!r} uses the {lane.broker} broker, not alpaca: "
                "only Alpaca lanes have a trade-updates stream"
            )
        if stream_url and not stream_url.startswith(("ws://", "wss://")):
            raise BridgeNotConfigured(
                f"--stream-url must be a ws:// or wss:// URL, not {stream_url!r}"
            )
        if not all(stream_credentials(lane)):
            raise BridgeNotConfigured(
                f"lane {lane.label!r} has no Alpaca key/secret (TRADING_ACCOUNTS_JSON or "
                "APCA_API_KEY_ID/APCA_API_SECRET_KEY)"
            )
        return cls(
            lane,
            kafka_config=producer_config(
                bootstrap_servers=settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS,
                client_id=f"{settings.TRADING_ORDER_FEED_CLIENT_ID}-bridge",
                security=settings.TRADING_ORDER_FEED_KAFKA,
            ),
            topic=bridge_topic(),
            stream_url=stream_url,
            reconcile=reconcile,
            backoff_min_seconds=settings.TRADING_ORDER_FEED_BRIDGE_BACKOFF_MIN_SECONDS,
            backoff_max_seconds=settings.TRADING_ORDER_FEED_BRIDGE_BACKOFF_MAX_SECONDS,
            heartbeat_seconds=settings.KAFKA_CONSUMER_HEARTBEAT_SECONDS,
            max_updates=max_updates,
            max_silence_seconds=settings.TRADING_TRADE_UPDATES_MAX_SILENCE_SECONDS,
        )

    def run(self) -> BridgeStats:
        """Run in the calling thread (its own event loop) until stopped."""
        return asyncio.run(self.run_async())

    def require_topic(self) -> None:
        """`TopicMissing` unless the topic exists: the bridge refuses to open the stream (and
        take updates it could not deliver) rather than let a produce create the topic."""
        topics_require(
            self._producer,
            [self.topic],
            bootstrap_servers=str(self._kafka_config.get("bootstrap.servers", "")),
            user=f"trade-updates bridge {self.lane.label}",
        )

    async def run_async(self) -> BridgeStats:
        self.require_topic()
        loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._loop = loop
        if self._stopping.is_set():
            self._stop_event.set()
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"bridge-{self.lane.label}-db"
        )
        logger.info(
            "trade-updates bridge started",
            extra={"account": self.lane.label, "topic": self.topic, "endpoint": self.endpoint},
        )
        heartbeats = asyncio.create_task(self._heartbeats())
        try:
            await self._connect_loop()
        finally:
            self._stop_event.set()
            await heartbeats
            self.stats.connected = False
            await loop.run_in_executor(self._executor, self._finish)
            self._executor.shutdown(wait=True)
            self._loop = None
        logger.info("trade-updates bridge stopped", extra=self.stats.as_json())
        return self.stats

    def _finish(self) -> None:
        """In the worker thread (the event loop is done with the producer): deliver what is
        queued — on a new producer if this one fails fatally now —, reconcile if an update did
        not make it, write the last heartbeat, let go of the thread's database connection."""
        self._serve(self._producer.flush, FLUSH_TIMEOUT_SECONDS)
        if self._fatal is not None:
            self._recover_if_fatal(force=True)
            self._serve(self._producer.flush, FLUSH_TIMEOUT_SECONDS)
        remaining = len(self._unconfirmed)
        if remaining:
            self._count_produce_errors(remaining)
            self._reconcile_needed = "updates not delivered at shutdown"
            logger.error(
                "trade updates not delivered at shutdown",
                extra={"account": self.lane.label, "undelivered": remaining},
            )
        if self._reconcile_needed:
            reason, self._reconcile_needed = self._reconcile_needed, ""
            self._reconcile(reason)
        self._heartbeat(state="stopped")
        self._release_producer()
        db_connections.close_all()

    async def _heartbeats(self) -> None:
        assert self._loop is not None
        while True:
            await self._loop.run_in_executor(self._executor, self._heartbeat)
            if await self._wait_stop(self.heartbeat_seconds):
                return

    def _heartbeat(self, *, state: str = "running") -> None:
        details = {
            "state": state,
            "account": self.lane.label,
            "topic": self.topic,
            "endpoint": self.endpoint,
            "connected": self.stats.connected,
            "updates": self.stats.updates,
            "delivered": self.stats.delivered,
            "produce_errors": self.stats.produce_errors,
            "producer_fatal_errors": self.stats.producer_fatal_errors,
            "resent": self.stats.resent,
            "connections": self.stats.connections,
            "reconnects": self.stats.reconnects,
        }
        try:
            heartbeat_record(
                kind=HEARTBEAT_KIND,
                name=self.process_name,
                interval_seconds=self.heartbeat_seconds,
                details=details,
            )
        except DatabaseError as exc:
            # a missing heartbeat is what the alert is for; it must not stop the trade updates
            logger.warning(
                "heartbeat failed", extra={"account": self.lane.label, "error": str(exc)}
            )
            close_old_connections()


class TradeUpdatesBridges:
    """One bridge per lane, each in its own thread; `stop()` stops them all."""

    def __init__(self, bridges: list[TradeUpdatesBridge]) -> None:
        self.bridges = bridges
        self._errors: list[BaseException] = []

    @classmethod
    def build(
        cls,
        *,
        account_labels: list[str] | None = None,
        stream_url: str | None = None,
        max_updates: int | None = None,
    ) -> TradeUpdatesBridges:
        labels = account_labels or bridge_lane_labels()
        if not labels:
            raise BridgeNotConfigured(
                "no enabled account lane uses the alpaca broker: nothing to bridge "
                "(simulated lanes publish their own trade updates)"
            )
        return cls(
            [
                TradeUpdatesBridge.for_lane(label, stream_url=stream_url, max_updates=max_updates)
                for label in dict.fromkeys(labels)
            ]
        )

    def stop(self) -> None:
        for bridge in self.bridges:
            bridge.stop()

    def run(self, *, exit_after_seconds: float | None = None) -> list[BridgeStats]:
        """Run every bridge until all have stopped; re-raises the first bridge's crash."""
        threads = [
            threading.Thread(
                target=self._run_one, args=(bridge,), name=f"bridge-{bridge.lane.label}"
            )
            for bridge in self.bridges
        ]
        for thread in threads:
            thread.start()
        deadline = None if exit_after_seconds is None else time.monotonic() + exit_after_seconds
        while any(thread.is_alive() for thread in threads):
            if deadline is not None and time.monotonic() >= deadline:
                self.stop()
                deadline = None
            for thread in threads:
                thread.join(timeout=0.1)
        if self._errors:
            raise self._errors[0]
        return [bridge.stats for bridge in self.bridges]

    def _run_one(self, bridge: TradeUpdatesBridge) -> None:
        try:
            bridge.run()
        except BaseException as exc:  # noqa: BLE001 - re-raised by run() in the calling thread
            logger.exception("trade-updates bridge crashed", extra={"account": bridge.lane.label})
            self._errors.append(exc)
            self.stop()
