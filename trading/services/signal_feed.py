"""TA signals from Kafka into `TaSignal` rows (the store behind the `kafka` signal source).

`run_signal_consumer` runs this handler on the shared batch consumer (`torghut_site.kafka`): a
batch is validated with the same row parser every signal source uses, stored in one transaction
(duplicates by stream key or log position ignored), and only then are the offsets stored. A row
that is not JSON or not a valid signal is dead-lettered with its reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from prometheus_client import Counter

from torghut_site.kafka.config import ConsumerNotConfigured
from torghut_site.kafka.consumer import BatchConsumer, ConsumerMetrics, consumer_build
from torghut_site.kafka.messages import DeadLetter, RawMessage
from torghut_site.models import HeartbeatKind
from trading.models import TaSignal
from trading.signals.types import parse_rows, row_key

SIGNAL_MESSAGES = Counter(
    "torghut_trading_signal_feed_messages_total", "Records polled from the TA signals topic."
)
SIGNAL_ERRORS = Counter(
    "torghut_trading_signal_feed_consumer_errors_total",
    "Kafka errors and failed handling attempts of the TA signal consumer.",
)
SIGNAL_ACCEPTED = Counter(
    "torghut_trading_signal_feed_rows_accepted_total",
    "Valid TA signal rows written (rows already stored are ignored by the database).",
)


class SignalFeedNotConfigured(ConsumerNotConfigured):
    pass


def signal_rows_ingest(messages: Sequence[RawMessage]) -> tuple[int, list[DeadLetter]]:
    """Store the valid rows of a batch; returns (valid rows, dead letters)."""
    letters: list[DeadLetter] = []
    rows: list[TaSignal] = []
    now = timezone.now()
    for message in messages:
        try:
            row: Any = json.loads(message.value or b"")
        except ValueError as exc:
            letters.append(DeadLetter(message, "invalid_json", f"not JSON: {exc}"))
            continue
        if not isinstance(row, dict):
            letters.append(DeadLetter(message, "invalid_json", "not a JSON object"))
            continue
        key = row_key(row)
        if key is None or not parse_rows([row]).signals:
            letters.append(
                DeadLetter(message, "invalid_signal", "missing or non-finite signal fields")
            )
            continue
        rows.append(
            TaSignal(
                event_ts=key.event_ts,
                symbol=key.symbol,
                seq=key.seq,
                row=row,
                source_topic=message.topic,
                source_partition=message.partition,
                source_offset=message.offset,
                received_at=now,
            )
        )
    with transaction.atomic():
        TaSignal.objects.bulk_create(rows, ignore_conflicts=True)
        reused = _reused_positions(rows, messages)
    SIGNAL_ACCEPTED.inc(len(rows) - len(reused))
    return len(rows) - len(reused), letters + reused


def _reused_positions(rows: Sequence[TaSignal], messages: Sequence[RawMessage]) -> list[DeadLetter]:
    """Rows whose log position is stored with another stream key (event time, symbol, seq): the
    log reused the offset (a topic recreated, a broker that lost acknowledged records). The
    conflict ignored the row; it is dead-lettered as `offset_reused` instead of lost. The same
    key at the position is a redelivery (nothing to do)."""
    if not rows:
        return []
    stored = {
        (t, p, o): key
        for t, p, o, *key in TaSignal.objects.filter(
            source_topic__in={r.source_topic for r in rows},
            source_offset__in={r.source_offset for r in rows},
        ).values_list(
            "source_topic", "source_partition", "source_offset", "event_ts", "symbol", "seq"
        )
    }
    by_position = {(m.topic, m.partition, m.offset): m for m in messages}
    letters = []
    for r in rows:
        position = (r.source_topic, r.source_partition, r.source_offset)
        key = stored.get(position)
        if key is not None and key != [r.event_ts, r.symbol, r.seq]:
            letters.append(
                DeadLetter.offset_reused(by_position[position], "a stored signal with another key")
            )
    return letters


class SignalFeedHandler:
    def handle_batch(self, messages: Sequence[RawMessage]) -> list[DeadLetter]:
        _, letters = signal_rows_ingest(messages)
        return letters


def signal_consumer(
    *, idle_exit_seconds: float | None = None, max_messages: int | None = None, **overrides: Any
) -> BatchConsumer:
    return consumer_build(
        "TRADING_SIGNAL_KAFKA",
        handler=SignalFeedHandler(),
        metrics=ConsumerMetrics(messages=SIGNAL_MESSAGES, errors=SIGNAL_ERRORS),
        idle_exit_seconds=idle_exit_seconds,
        max_messages=max_messages,
        name="ta_signals",
        heartbeat_kind=HeartbeatKind.SIGNAL_CONSUMER,
        security=settings.TRADING_SIGNAL_KAFKA,
        unconfigured=SignalFeedNotConfigured(
            "TRADING_SIGNAL_KAFKA_BOOTSTRAP_SERVERS (or TRADING_ORDER_FEED_BOOTSTRAP_SERVERS) "
            "is not set: the signal consumer has no Kafka to read"
        ),
        **overrides,
    )
