"""kill -9 of `run_signal_consumer` after a batch committed and before its offsets were stored.

The TA signal consumer (`trading.services.signal_feed`, consumer name `ta_signals`) is killed at
`ta_signals_before_store_offsets` inside its first batch: that batch's rows are in the database,
no offset was ever stored. The restarted process gets every record again and stores nothing
twice (unique stream key and log position); a row produced twice and a malformed record are
handled the same way on both deliveries (one row, one dead letter).
"""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Producer

from orderfeed.tests.conftest import create_topics, kafka_bootstrap  # noqa: F401 - fixture
from tests.conftest import manage_in_test_db
from torghut_site.kafka.config import producer_config
from torghut_site.models import DeadLetterMessage
from trading.models import TaSignal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.services]

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN")
PER_SYMBOL = 3
BATCH = 4
START = datetime(2026, 3, 3, 14, 31, tzinfo=UTC)


def _row(symbol: str, n: int) -> dict[str, Any]:
    return {
        "event_ts": (START + timedelta(minutes=n)).isoformat().replace("+00:00", "Z"),
        "symbol": symbol,
        "seq": n + 1,
        "timeframe": "1Min",
        "price": f"{100 + n}.25",
        "macd": 1.2,
        "macd_signal": 0.5,
        "rsi14": 30.0,
    }


def _consumer(
    bootstrap: str, topic: str, group: str, fault: str | None
) -> subprocess.CompletedProcess[str]:
    env = {
        "TRADING_SIGNAL_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TRADING_SIGNAL_KAFKA_TOPIC": topic,
        "TRADING_SIGNAL_KAFKA_DLQ_TOPIC": f"{topic}.dlq",
        "TRADING_SIGNAL_KAFKA_GROUP_ID": group,
        # the restarted process is the same member: it takes the partitions back at once
        "TRADING_SIGNAL_KAFKA_GROUP_INSTANCE_ID": "signals-0",
        "TRADING_SIGNAL_KAFKA_AUTO_OFFSET_RESET": "earliest",
        "TRADING_SIGNAL_KAFKA_BATCH_SIZE": str(BATCH),
        "TRADING_SIGNAL_KAFKA_POLL_MS": "100",
    }
    return manage_in_test_db(
        "run_signal_consumer", "--idle-exit-seconds", "1", env=env, fault=fault
    )


def test_kill_9_before_offsets_then_restart_stores_each_signal_row_once(
    kafka_bootstrap,  # noqa: F811 - fixture
):
    topic = f"ta-crash-{uuid.uuid4().hex[:10]}"
    create_topics(kafka_bootstrap, (topic, 3), (f"{topic}.dlq", 1))
    producer = Producer(producer_config(bootstrap_servers=kafka_bootstrap, client_id="ta-test"))
    rows = [_row(symbol, n) for n in range(PER_SYMBOL) for symbol in SYMBOLS]
    # keyed by symbol (a symbol's rows share a partition), then the first row again (the
    # producer retried it) and a record that is not JSON
    for row in [*rows, rows[0]]:
        producer.produce(topic, key=row["symbol"].encode(), value=json.dumps(row).encode())
    producer.produce(topic, key=b"AAPL", value=b"{not json")
    assert producer.flush(10) == 0
    total = len(rows) + 2
    group = f"ta-crash-{uuid.uuid4().hex[:8]}"

    killed = _consumer(kafka_bootstrap, topic, group, "ta_signals_before_store_offsets")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    stored = TaSignal.objects.count()
    # the first batch committed (at most BATCH records, fewer rows when it held the duplicate or
    # the malformed record), its offsets were never stored
    assert 1 <= stored <= BATCH

    restarted = _consumer(kafka_bootstrap, topic, group, None)
    assert restarted.returncode == 0, restarted.stderr
    stats = json.loads(restarted.stdout.strip().splitlines()[-1])
    assert stats["messages"] == total  # every record redelivered …
    assert stats["dead_letters"] == 1
    assert TaSignal.objects.count() == len(rows)  # … and each row stored once
    assert sorted(TaSignal.objects.values_list("symbol", "seq")) == sorted(
        (symbol, n + 1) for n in range(PER_SYMBOL) for symbol in SYMBOLS
    )
    # the row produced twice is the first copy (AAPL's partition: offsets 0-2, the copy at 3)
    first = TaSignal.objects.get(symbol="AAPL", seq=1)
    assert (first.source_offset, first.row) == (0, rows[0])
    [letter] = DeadLetterMessage.objects.all()
    assert letter.value is not None
    assert (letter.consumer, letter.topic, letter.reason, bytes(letter.value)) == (
        "ta_signals",
        topic,
        "invalid_json",
        b"{not json",
    )

    again = _consumer(kafka_bootstrap, topic, group, None)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1])["messages"] == 0  # offsets stored
    assert TaSignal.objects.count() == len(rows)
