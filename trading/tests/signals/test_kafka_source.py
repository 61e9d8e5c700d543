"""The `kafka` signal source: rows from a real Kafka-protocol broker, read by cursor."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer

from orderfeed.tests.conftest import create_topics, kafka_bootstrap  # noqa: F401 - fixture
from torghut_site.kafka.messages import RawMessage
from torghut_site.models import DeadLetterMessage
from trading.models import TaSignal, TradeCursor
from trading.services.signal_feed import signal_consumer, signal_rows_ingest
from trading.services.signals import signal_source_for
from trading.signals.kafka import KafkaSignalSource
from trading.signals.types import SignalCursor

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def row(ts: str, symbol: str, seq: int, price: str = "100.5") -> dict[str, object]:
    return {
        "event_ts": ts,
        "symbol": symbol,
        "seq": seq,
        "timeframe": "1Min",
        "price": price,
        "macd": 1.2,
        "macd_signal": 0.5,
        "rsi14": 30.0,
    }


@pytest.fixture
def topic(settings, kafka_bootstrap):  # noqa: F811 - the imported fixture
    name = f"test.ta-signals.{uuid.uuid4().hex[:12]}"
    dlq = f"{name}.dlq"
    create_topics(kafka_bootstrap, (name, 3), (dlq, 1))
    settings.TRADING_SIGNAL_KAFKA_BOOTSTRAP_SERVERS = kafka_bootstrap
    settings.TRADING_SIGNAL_KAFKA_TOPIC = name
    settings.TRADING_SIGNAL_KAFKA_GROUP_ID = f"test-{name}"
    settings.TRADING_SIGNAL_KAFKA_AUTO_OFFSET_RESET = "earliest"
    settings.TRADING_SIGNAL_KAFKA_POLL_MS = 100
    settings.TRADING_SIGNAL_KAFKA_DLQ_TOPIC = dlq
    settings.TRADING_SIGNAL_KAFKA = {}
    producer = Producer({"bootstrap.servers": kafka_bootstrap})

    def produce(*values: object) -> None:
        for value in values:
            body = value if isinstance(value, bytes) else json.dumps(value).encode()
            producer.produce(name, key=b"k", value=body, partition=0)
        assert producer.flush(10) == 0

    return produce


def test_consumer_stores_valid_rows_once_and_dead_letters_the_rest(topic):
    a = row("2026-03-03T14:31:00Z", "AAPL", 1)
    topic(a, a, b"{nope", {"symbol": "MSFT", "seq": 2}, row("2026-03-03T14:30:00Z", "MSFT", 2))
    stats = signal_consumer(idle_exit_seconds=0.6).run()

    assert stats.messages == 5
    assert list(TaSignal.objects.order_by("event_ts").values_list("symbol", "seq")) == [
        ("MSFT", 2),
        ("AAPL", 1),
    ]
    assert list(DeadLetterMessage.objects.order_by("offset").values_list("offset", "reason")) == [
        (2, "invalid_json"),
        (3, "invalid_signal"),
    ]


def test_source_reads_rows_after_the_cursor_in_stream_order(topic, settings):
    topic(
        row("2026-03-03T14:31:00Z", "MSFT", 3),
        row("2026-03-03T14:30:00Z", "AAPL", 1),
        row("2026-03-03T14:31:00Z", "AAPL", 2),
        row("2026-03-03T14:32:00Z", "AAPL", 4),
    )
    signal_consumer(idle_exit_seconds=0.6).run()
    settings.TRADING_SIGNAL_SOURCE = "kafka"
    cursor = TradeCursor.objects.create(source="kafka", account_label="paper")
    source = signal_source_for(cursor=cursor)
    assert isinstance(source, KafkaSignalSource)

    now = datetime(2026, 3, 3, 14, 40, tzinfo=UTC)
    start = SignalCursor(datetime(2026, 3, 3, 14, 30, tzinfo=UTC), "AAPL", 1)
    first = source.fetch(start, limit=2, now=now)
    assert [(s.symbol, s.seq) for s in first.signals] == [("AAPL", 2), ("MSFT", 3)]
    assert first.cursor_after == SignalCursor(datetime(2026, 3, 3, 14, 31, tzinfo=UTC), "MSFT", 3)
    second = source.fetch(first.cursor_after, limit=2, now=now)
    assert [(s.symbol, s.seq, str(s.price)) for s in second.signals] == [("AAPL", 4, "100.5")]
    assert second.latest_event_ts == datetime(2026, 3, 3, 14, 32, tzinfo=UTC)
    empty = source.fetch(second.cursor_after, limit=2, now=now)
    assert empty.signals == ()
    assert empty.no_signal_reason is not None


def test_a_reused_log_position_with_another_signal_is_dead_lettered_not_dropped():
    def message(offset: int, value: dict[str, object]) -> RawMessage:
        return RawMessage("ta.topic", 0, offset, b"k", json.dumps(value).encode(), 0)

    first = row("2026-03-03T14:31:00Z", "AAPL", 1)
    assert signal_rows_ingest([message(0, first)]) == (1, [])

    again = message(0, first)  # the stored record itself, redelivered
    reused = message(0, row("2026-03-03T14:32:00Z", "AAPL", 2))  # another signal at offset 0
    accepted, letters = signal_rows_ingest([again])
    assert (accepted, letters) == (1, [])
    accepted, letters = signal_rows_ingest([reused])
    assert accepted == 0
    assert [(letter.message, letter.reason, letter.error) for letter in letters] == [
        (
            reused,
            "offset_reused",
            "ta.topic[0]@0 holds a stored signal with another key: the log reused the offset",
        )
    ]
    assert list(TaSignal.objects.values_list("symbol", "seq", "source_offset")) == [("AAPL", 1, 0)]
