"""The broker-to-Kafka bridge: Alpaca's `trade_updates` stream onto the order-feed topic.

One `TradeUpdatesBridge` per Alpaca lane. It subscribes to the lane's trading stream with
alpaca-py's `TradingStream` and produces every update, wrapped in `trade_update_envelope`, to
the order-feed topic keyed by symbol (all updates of a symbol share a partition, so they stay in
order) with the idempotent producer of `torghut_site.kafka.config.producer_config`.

Who reconnects: alpaca-py's `TradingStream.run()` swallows every error and reconnects by itself,
with its own backoff and no hook for "connected again". The bridge needs both: its own backoff
(settings `TRADING_ORDER_FEED_BRIDGE_BACKOFF_MIN/MAX_SECONDS`) and a reconciliation after every
reconnection, because the stream has no replay — whatever happened while we were away is only
found by asking the broker. So the bridge uses `TradingStream` for what fits (connection,
authentication, the `listen` request, frame routing through `_dispatch`, `close`) and drives the
session itself instead of `run()`:

    connect + authenticate + listen  ->  wait for the `listening` ack  ->  receive frames
          ^                                        |                            |
          |                                  (connected: reset the backoff;     |
          |                                   not the first time: reconcile)    |
          +---- backoff (full jitter, floor) <---------- lost / refused / silent --+

The backoff is full jitter with a floor: uniform(0, min(max, min * 2^(n-1))), never below min
(`jittered_backoff_seconds`; every process restarted at once does not come back in step). A
refusal for too many connections (HTTP 429 at the handshake, or "connection limit exceeded" in
the authorization answer: Alpaca allows one stream per account) waits at least
RATE_LIMIT_BACKOFF_SECONDS on top of that, so a run of refusals never becomes a burst. A stream
that is connected but has sent nothing for TRADING_TRADE_UPDATES_MAX_SILENCE_SECONDS while the
lane has open orders and the market is open (`trade_stream_watch_needed`) is closed and reopened
through the same backoff (counted; logged once per silence): a session closed for silence does
not reset the backoff unless a trade update came through it. `stop()` (thread-safe) cancels the
session at its next await — an update already received is always handed to the producer — then
the producer is flushed and a last heartbeat written.

Stream health for the trade cycle: the bridge writes the lane's `TradeStreamState` through
`trading.services.trade_stream` — on `listening`, at most once a second while frames arrive, and
when the session ends — which the cycle reads to refuse new risk while the stream is unhealthy.

Database work (heartbeats, stream health, the reconcile trigger) runs in one worker thread per
bridge, never on the event loop, in the order it was asked for.

The producer: every update stays in `_unconfirmed` until its delivery report says Kafka has it. A
report with an error drops it, counts it and triggers a reconciliation. A *fatal* producer error
(librdkafka gives up on the idempotent producer, e.g. `OUT_OF_ORDER_SEQUENCE_NUMBER` after a broker
lost records it had acknowledged) would otherwise make every later produce fail until the process
restarts: the bridge logs it once, counts it, puts a new producer with the same configuration in
place, produces every unconfirmed update on it (a duplicate is harmless: the consumer dedupes by
event fingerprint) and triggers a reconciliation, because what the broker lost after acknowledging
it is beyond any producer. A producer that fails again before delivering anything is replaced
after the reconnect backoff (min * 2^(n-1), capped), not in a loop.

Note: vendor clients belong in one adapter module per vendor, yet alpaca-py and confluent-kafka are
imported here rather than through `trading/brokers/alpaca.py`; the stream is a different client than
the REST adapter and the order feed owns it. Moving `_open_stream` into the adapter is a mechanical
follow-up.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from alpaca.common.enums import BaseURL
from alpaca.trading.stream import TradingStream
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.db import connections as db_connections
from prometheus_client import Counter
from websockets.exceptions import InvalidURI, WebSocketException

from torghut_site.kafka.clients import kafka_producer, producer_release
from torghut_site.kafka.config import producer_config
from torghut_site.kafka.topics import topics_require
from torghut_site.services import heartbeat_record, instance_name
from trading.lanes import LaneConfig, UnknownLaneError, lane_config, lane_configs
from trading.selectors.trade_stream import trade_stream_watch_needed
from trading.services.trade_stream import (
    trade_stream_connected,
    trade_stream_disconnected,
    trade_stream_touch,
)

logger = logging.getLogger(__name__)

HEARTBEAT_KIND = "trade_updates_bridge"
FLUSH_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 1.0  # the receive loop wakes at least this often to serve delivery reports
# after a refusal for too many connections: Alpaca counts connections per account, a fast retry
# only renews the refusal
RATE_LIMIT_BACKOFF_SECONDS = 60.0
TOUCH_SECONDS = 1.0  # stream health is written at most this often while frames arrive
CONNECTION_LIMIT_TEXT = "connection limit exceeded"

BRIDGE_UPDATES = Counter(
    "torghut_trading_order_feed_bridge_updates_total",
    "Trade updates received from the broker stream and handed to the producer.",
    ["account"],
)
BRIDGE_RECONNECTS = Counter(
    "torghut_trading_order_feed_bridge_reconnects_total",
    "Stream connection attempts after the first (connection lost or refused).",
    ["account"],
)
BRIDGE_PRODUCE_ERRORS = Counter(
    "torghut_trading_order_feed_bridge_produce_errors_total",
    "Trade updates that could not be queued or were not delivered to Kafka.",
    ["account"],
)
BRIDGE_RATE_LIMITED = Counter(
    "torghut_trading_order_feed_bridge_rate_limited_total",
    "Stream connections refused for too many connections (HTTP 429, connection limit exceeded).",
    ["account"],
)
BRIDGE_SILENCE_RECONNECTS = Counter(
    "torghut_trading_order_feed_bridge_silence_reconnects_total",
    "Connected streams closed and reopened after the max silence while orders were open.",
    ["account"],
)
BRIDGE_PRODUCER_FATAL_ERRORS = Counter(
    "torghut_trading_order_feed_bridge_producer_fatal_errors_total",
    "Fatal errors of the bridge's Kafka producer; each one replaced the producer.",
    ["account"],
)


class BridgeNotConfigured(Exception):
    """The bridge cannot start: no Kafka, no Alpaca lane, or a lane without keys."""


class StreamAuthError(Exception):
    """The stream refused the lane's key/secret."""


class StreamProtocolError(Exception):
    """The stream answered something the Alpaca protocol does not allow."""


class StreamRateLimited(Exception):
    """The stream refused the connection: too many connections for the account."""


class StreamSilent(Exception):
    """Connected, but nothing came for longer than the max silence while orders are open."""


# what ends a session and leads to a reconnect with backoff; anything else is a bug and raises
SESSION_ERRORS: tuple[type[BaseException], ...] = (
    StreamAuthError,
    StreamProtocolError,
    StreamRateLimited,
    StreamSilent,
    OSError,  # refused, reset, unreachable; TimeoutError is an OSError
    WebSocketException,  # handshake refused (e.g. HTTP 429/5xx), connection closed
)


def trade_update_envelope(*, data: dict[str, Any], account_label: str) -> dict[str, Any]:
    """The order-feed record of one stream update (no `seq`: the consumer orders by event time)."""
    return {
        "channel": "trade_updates",
        "payload": data,
        "accountLabel": account_label,
        "version": 2,
        "source": "alpaca_stream",
    }


def bridge_topic() -> str:
    return settings.TRADING_ORDER_FEED_TOPIC_V2 or settings.TRADING_ORDER_FEED_TOPIC


def bridge_lane_labels() -> list[str]:
    """The lanes the bridge serves by default: enabled lanes on the Alpaca broker."""
    return [lane.label for lane in lane_configs() if lane.enabled and lane.broker == "alpaca"]


def backoff_seconds(failures: int, *, minimum: float, maximum: float) -> float:
    """The wait before the next attempt after `failures` consecutive failures (>= 1)."""
    return float(min(maximum, minimum * 2 ** max(failures - 1, 0)))


def jittered_backoff_seconds(
    failures: int, *, minimum: float, maximum: float, rng: random.Random
) -> float:
    """Full jitter with a floor: uniform(0, `backoff_seconds`), never below `minimum`."""
    return max(
        minimum, rng.uniform(0.0, backoff_seconds(failures, minimum=minimum, maximum=maximum))
    )


def stream_rate_limited(exc: BaseException) -> bool:
    """A refusal for too many connections: HTTP 429 at the handshake (websockets' legacy client
    raises InvalidStatusCode with `status_code`, the new one InvalidStatus with `response`), or
    Alpaca's "connection limit exceeded"."""
    if isinstance(exc, StreamRateLimited):
        return True
    response = getattr(exc, "response", None)
    status = getattr(exc, "status_code", None) or getattr(response, "status_code", None)
    return status == 429 or CONNECTION_LIMIT_TEXT in str(exc).lower()


def fatal_kafka_error(exc: BaseException) -> KafkaError | None:
    """The fatal producer error behind `exc`, or None.

    confluent-kafka never hands a fatal error to `error_cb`: `poll()`/`flush()` raise it as a
    KafkaException. A delivery callback served in the same call then runs with that exception
    still set and fails, so the call raises a SystemError whose cause is the KafkaException
    (confluent-kafka 2.16, observed): the whole chain is searched. `produce()` on a producer that
    is already fatal raises `_FATAL`, which is not flagged `fatal()`. (`flush()` can even lose the
    exception and raise a bare SystemError: see `TradeUpdatesBridge._serve`.)"""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, KafkaException) and current.args:
            error = current.args[0]
            if isinstance(error, KafkaError) and (
                error.fatal() or error.code() == KafkaError._FATAL
            ):
                return error
        current = current.__cause__ or current.__context__
    return None


def reconcile_trigger(account_label: str) -> None:
    """Queue the lane's reconciliation; without a reachable Celery broker, run it here."""
    from kombu.exceptions import OperationalError as BrokerUnavailable

    from trading.tasks import reconcile

    try:
        reconcile.delay(account_label=account_label)
    except (BrokerUnavailable, OSError) as exc:
        logger.warning(
            "could not queue the reconciliation; running it in the bridge",
            extra={"account": account_label, "error": str(exc)},
        )
        from trading.services.reconcile import reconcile_lane

        reconcile_lane(account_label=account_label)


def stream_credentials(lane: LaneConfig) -> tuple[str, str]:
    """The lane's key and secret, with the fallback `AlpacaBroker.from_settings` applies."""
    return (
        lane.api_key or settings.APCA_API_KEY_ID,
        lane.secret_key or settings.APCA_API_SECRET_KEY,
    )


@dataclass
class _StreamWatch:
    """One session's stream-health bookkeeping, on the event loop (times: monotonic, except the
    wall-clock times still to be written)."""

    connected: bool = False  # `listening` came
    last_message: float = 0.0
    last_touch: float = 0.0  # the last health write
    message_at: datetime | None = None  # of the last frame not written yet
    event_at: datetime | None = None  # of the last trade update not written yet
    events: int = 0  # trade updates in this session
    check_pending: bool = False  # the worker is looking for open orders
    next_check: float = 0.0
    close: bool = False  # silent with open orders: the worker says close


@dataclass
class BridgeStats:
    account: str
    attempts: int = 0  # connection attempts
    rate_limited: int = 0  # attempts refused for too many connections
    silence_reconnects: int = 0  # sessions closed after the max silence with orders open
    connections: int = 0  # sessions that reached `listening`
    reconnects: int = 0  # attempts after the first
    updates: int = 0  # updates handed to the producer
    delivered: int = 0  # acknowledged by Kafka
    produce_errors: int = 0
    producer_fatal_errors: int = 0  # each one replaced the producer
    resent: int = 0  # unconfirmed updates produced again on a new producer
    connected: bool = False
    last_error: str = ""
    backoff_seconds: deque[float] = field(default_factory=lambda: deque(maxlen=32))

    def as_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "attempts": self.attempts,
            "rate_limited": self.rate_limited,
            "silence_reconnects": self.silence_reconnects,
            "connections": self.connections,
            "reconnects": self.reconnects,
            "updates": self.updates,
            "delivered": self.delivered,
            "produce_errors": self.produce_errors,
            "producer_fatal_errors": self.producer_fatal_errors,
            "resent": self.resent,
            "last_error": self.last_error,
            "backoff_seconds": list(self.backoff_seconds),
        }


class TradeUpdatesBridge:
    """Bridges one lane's trade updates to Kafka until `stop()` (or `max_updates`)."""

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
        self._watch = _StreamWatch()
        self._silence_logged = False  # the current silence was logged: once until an update

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

    def _release_producer(self) -> None:
        """Close the producer (what it still held is counted above): its librdkafka threads end
        with the bridge instead of reconnecting for as long as the bridge object lives."""
        try:
            producer_release(self._producer, 0)
        except (KafkaException, SystemError, RuntimeError) as exc:
            logger.warning(
                "could not close the producer",
                extra={"account": self.lane.label, "error": str(exc)},
            )

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

    async def _wait_stop(self, seconds: float) -> bool:
        """Wait `seconds`, or less when stop() comes first; True when stopped."""
        assert self._stop_event is not None
        try:
            await asyncio.wait_for(self._stop_event.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

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
        self._watch = _StreamWatch()
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

    def _reconcile_if_needed(self) -> None:
        """An update that never reached Kafka is lost to the consumer: reconcile the lane."""
        if self._reconcile_needed:
            reason, self._reconcile_needed = self._reconcile_needed, ""
            self._in_worker(partial(self._reconcile, reason))

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

    # -- stream health -----------------------------------------------------------------------------
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

    def _silence_check(self, watch: _StreamWatch) -> None:
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

    # -- updates -----------------------------------------------------------------------------------
    async def _on_trade_update(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        if not isinstance(data, dict):
            logger.warning(
                "trade update without data", extra={"account": self.lane.label, "frame": message}
            )
            return
        self._produce(data)

    def _produce(self, data: dict[str, Any]) -> None:
        order = data.get("order")
        symbol = str(order.get("symbol") or "") if isinstance(order, dict) else ""
        value = json.dumps(trade_update_envelope(data=data, account_label=self.lane.label))
        key = next(self._ids)
        self._unconfirmed[key] = (symbol, value.encode())
        if not self._send(key):
            return
        self.stats.updates += 1
        BRIDGE_UPDATES.labels(account=self.lane.label).inc()
        if self.max_updates is not None and self.stats.updates >= self.max_updates:
            self.stop()

    def _send(self, key: int) -> bool:
        """Hand an unconfirmed update to the producer. False when it cannot be queued (then it is
        dropped, counted, and the lane will be reconciled); True when queued, or kept for the
        next producer because this one is dead."""
        if self._fatal is not None:
            return True  # kept: the next producer sends it
        entry = self._unconfirmed.get(key)
        if entry is None:
            return True  # confirmed meanwhile (a re-send that made room with a poll)
        symbol, value = entry
        failure: Exception
        try:
            try:
                self._produce_one(key, symbol, value)
            except BufferError:
                # the local queue is full (Kafka unreachable for a long time): make room, once
                self._serve(self._producer.poll, 1.0)
                if self._fatal is not None:
                    return True
                self._produce_one(key, symbol, value)
        except KafkaException as exc:
            fatal = fatal_kafka_error(exc)
            if fatal is not None:
                self._on_fatal(fatal)
                return True
            failure = exc
        except BufferError as exc:
            failure = exc
        else:
            return True
        del self._unconfirmed[key]
        self._count_produce_errors(1)
        self._reconcile_needed = "update not queued"
        logger.error(
            "trade update could not be queued for Kafka",
            extra={"account": self.lane.label, "symbol": symbol, "error": str(failure)},
        )
        return False

    def _produce_one(self, key: int, symbol: str, value: bytes) -> None:
        self._producer.produce(
            self.topic,
            key=symbol.encode() if symbol else None,
            value=value,
            on_delivery=partial(self._on_delivery, self._generation, key),
        )

    def _on_delivery(self, generation: int, key: int, err: KafkaError | None, msg: Message) -> None:
        """A delivery report, served by `poll`/`flush` on the thread that calls them. An error is
        only noted here: whether the update is lost or goes to the next producer depends on a
        fatal error, which may surface in the same call (see `_settle_failures`)."""
        if generation != self._generation:
            return  # from a replaced producer: its unconfirmed updates were produced again
        if err is not None:
            self._failed.append((key, err))
            return
        self._fatal_streak = 0
        if self._unconfirmed.pop(key, None) is not None:
            self.stats.delivered += 1

    # -- the producer's state ----------------------------------------------------------------------
    def _serve_producer(self) -> None:
        """On the event loop, after every frame and at least every POLL_SECONDS: serve delivery
        reports, replace a dead producer, queue a reconciliation when one is needed."""
        self._serve(self._producer.poll, 0)
        self._recover_if_fatal()
        self._reconcile_if_needed()

    def _serve(self, call: Callable[[float], int], timeout: float) -> None:
        """`poll` or `flush` the producer; a fatal error it raises marks the producer dead.

        So does a SystemError without a fatal error behind it: confluent-kafka 2.16's `flush()`
        loses the fatal error it met and raises "returned NULL without setting an exception"
        (observed after OUT_OF_ORDER_SEQUENCE_NUMBER). A producer whose client code is in that
        state is not trusted either; replacing it costs at most duplicates."""
        try:
            call(timeout)
        except (KafkaException, SystemError) as exc:
            fatal = fatal_kafka_error(exc)
            if fatal is None and not isinstance(exc, SystemError):
                raise
            self._on_fatal(fatal or exc)
        self._settle_failures()

    def _settle_failures(self) -> None:
        """Delivery errors after a poll: with a dead producer the updates wait for the next one;
        otherwise they are lost to Kafka (counted; the lane will be reconciled)."""
        failed, self._failed = self._failed, []
        for _, error in failed:
            if error.fatal() or error.code() == KafkaError._FATAL:
                self._on_fatal(error)
        if self._fatal is not None:
            return
        for key, error in failed:
            if self._unconfirmed.pop(key, None) is None:
                continue
            self._count_produce_errors(1)
            self._reconcile_needed = "update not delivered"
            logger.error(
                "trade update not delivered to Kafka",
                extra={"account": self.lane.label, "topic": self.topic, "error": str(error)},
            )

    def _on_fatal(self, error: KafkaError | BaseException) -> None:
        if self._fatal is not None:
            return  # this producer's fatal error is known already
        self._fatal = error
        self.stats.producer_fatal_errors += 1
        BRIDGE_PRODUCER_FATAL_ERRORS.labels(account=self.lane.label).inc()
        logger.error(
            "Kafka producer failed fatally: replacing it and producing its unconfirmed updates "
            "again",
            extra={
                "account": self.lane.label,
                "topic": self.topic,
                "error": str(error),
                "unconfirmed": len(self._unconfirmed),
                "fatal_errors": self.stats.producer_fatal_errors,
            },
        )

    def _recover_if_fatal(self, *, force: bool = False) -> None:
        """Replace a dead producer — at once the first time, after the backoff when the last new
        one died before delivering anything — and produce the unconfirmed updates on the new one.
        """
        if self._fatal is None:
            return
        now = time.monotonic()
        if not force and now < self._replace_not_before:
            return
        self._fatal_streak += 1
        self._replace_not_before = now + backoff_seconds(
            self._fatal_streak, minimum=self.backoff_min_seconds, maximum=self.backoff_max_seconds
        )
        dead = self._producer
        self._generation += 1
        self._failed.clear()
        self._fatal = None
        try:
            # local only: drop what it holds (its reports now belong to a replaced generation),
            # then end its threads
            dead.purge(in_queue=True, in_flight=True, blocking=False)
            dead.poll(0)
        except (KafkaException, SystemError) as exc:
            logger.warning(
                "could not purge the failed producer",
                extra={"account": self.lane.label, "error": str(exc)},
            )
        try:
            dead.close()
        except (KafkaException, SystemError, RuntimeError) as exc:
            logger.warning(
                "could not close the failed producer",
                extra={"account": self.lane.label, "error": str(exc)},
            )
        self._producer = kafka_producer(self._kafka_config)
        unconfirmed = list(self._unconfirmed)
        resent = sum(self._send(key) for key in unconfirmed)
        self.stats.resent += resent
        self._reconcile_needed = "producer replaced"
        logger.info(
            "Kafka producer replaced",
            extra={"account": self.lane.label, "resent": resent, "unconfirmed": len(unconfirmed)},
        )

    def _count_produce_errors(self, n: int) -> None:
        self.stats.produce_errors += n
        BRIDGE_PRODUCE_ERRORS.labels(account=self.lane.label).inc(n)

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
