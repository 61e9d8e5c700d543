"""What every part of a bridge shares: its configuration and state (built in `BridgeCore`), its
stop, and the worker thread that does its database work in the order it was asked for."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from alpaca.common.enums import BaseURL
from confluent_kafka import KafkaError, Producer

from orderfeed.bridge.backoff import RATE_LIMIT_BACKOFF_SECONDS
from orderfeed.bridge.config import reconcile_trigger
from orderfeed.bridge.state import BridgeStats, StreamWatch
from torghut_site.kafka.clients import kafka_producer
from torghut_site.services import instance_name
from trading.lanes import LaneConfig

# the package's one logger name, as before the split (log pipelines and tests filter on it)
logger = logging.getLogger("orderfeed.bridge")


class BridgeCore:
    """A bridge's state; the session, stream-health and producer parts build on it."""

    def __init__(
        self,
        lane: LaneConfig,
        *,
        kafka_config: dict[str, Any],
        topic: str,
        stream_url: str | None = None,
        reconcile: Callable[[str], None] = reconcile_trigger,
        backoff_min_seconds: float = 1.0,
        backoff_max_seconds: float = 60.0,
        heartbeat_seconds: float = 15.0,
        connect_timeout_seconds: float = 10.0,
        max_updates: int | None = None,
        max_silence_seconds: float = 60.0,
        rate_limit_backoff_seconds: float = RATE_LIMIT_BACKOFF_SECONDS,
        rng: random.Random | None = None,
    ) -> None:
        self.lane = lane
        self.topic = topic
        self.stream_url = stream_url or None
        self.reconcile = reconcile
        self.backoff_min_seconds = backoff_min_seconds
        self.backoff_max_seconds = max(backoff_max_seconds, backoff_min_seconds)
        self.heartbeat_seconds = heartbeat_seconds
        self.connect_timeout_seconds = connect_timeout_seconds
        self.max_updates = max_updates
        self.max_silence_seconds = max_silence_seconds
        self.rate_limit_backoff_seconds = rate_limit_backoff_seconds
        # jitter, not secrecy: a seeded generator makes a test's waits reproducible
        self._rng = rng or random.Random()  # noqa: S311
        # the lane and the stable instance name: a restarted bridge takes its row back
        self.process_name = f"{lane.label}:{instance_name()}"
        self.stats = BridgeStats(account=lane.label)
        self._kafka_config = dict(kafka_config)
        self._producer = kafka_producer(self._kafka_config)
        self._generation = 0  # of the producer: reports of a replaced one are ignored
        self._ids = itertools.count()
        # every update until Kafka confirmed it: id -> (symbol, value), in produce order
        self._unconfirmed: dict[int, tuple[str, bytes]] = {}
        self._failed: list[tuple[int, KafkaError]] = []  # reports with an error, settled after
        self._fatal: KafkaError | BaseException | None = None  # the current producer is dead
        self._fatal_streak = 0  # replacements since the last delivery
        self._replace_not_before = 0.0
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._pending: set[asyncio.Future[None]] = set()
        # why the lane must be reconciled ("" = no need): an update Kafka refused, a replaced
        # producer; the broker is the truth now
        self._reconcile_needed = ""
        self._watch = StreamWatch()
        self._silence_logged = False  # the current silence was logged: once until an update

    @property
    def producer(self) -> Producer:
        """The current producer: a new one after each fatal error."""
        return self._producer

    @property
    def endpoint(self) -> str:
        if self.stream_url:
            return self.stream_url
        default = BaseURL.TRADING_STREAM_LIVE if self.lane.is_live else BaseURL.TRADING_STREAM_PAPER
        return str(default.value)

    # -- lifecycle ---------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the bridge to finish; safe from any thread and from a signal handler."""
        self._stopping.set()
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop already closed: the bridge is done
                pass

    async def _wait_stop(self, seconds: float) -> bool:
        """Wait `seconds`, or less when stop() comes first; True when stopped."""
        assert self._stop_event is not None
        try:
            await asyncio.wait_for(self._stop_event.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    # -- work in the worker thread -----------------------------------------------------------------
    def _in_worker(self, fn: Callable[[], None]) -> None:
        assert self._loop is not None
        future = self._loop.run_in_executor(self._executor, fn)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    def _reconcile(self, reason: str) -> None:
        try:
            self.reconcile(self.lane.label)
        except Exception:  # noqa: BLE001 - the stream must go on; the periodic reconcile retries
            logger.exception(
                "reconciliation failed", extra={"reason": reason, **self.stats.as_json()}
            )
        else:
            logger.info(
                "reconciliation triggered", extra={"reason": reason, **self.stats.as_json()}
            )
