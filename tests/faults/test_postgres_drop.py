"""The order-feed consumer's Postgres connection is terminated (`pg_terminate_backend`) again and
again while it works through a backlog: it reconnects, retries the batch it was in, and every
update is applied exactly once, with nothing dead-lettered."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from orderfeed.models import OrderEvent
from orderfeed.tests.conftest import (  # noqa: F401 - kafka_bootstrap is a fixture
    assert_executions_filled_once,
    create_topics,
    fill_updates,
    kafka_bootstrap,
    make_order,
)
from tests.conftest import ROOT
from tests.faults.conftest import trading_env, wait_for
from torghut_site.models import DeadLetterMessage
from trading.models import TradeDecision

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.services]

ORDERS = 60  # x 3 updates, batches of 4: the consumer is always inside a batch


def _terminate_other_backends() -> int:
    """End every other session on the test database: the consumer's."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def test_connection_killed_mid_batch_every_event_applied_once(
    kafka_bootstrap,  # noqa: F811 - fixture
    tmp_path: Path,
):
    suffix = uuid.uuid4().hex[:10]
    topic, dlq = f"pgdrop.{suffix}", f"pgdrop.dlq.{suffix}"
    create_topics(kafka_bootstrap, (topic, 3), (dlq, 1))
    from confluent_kafka import Producer

    executions = []
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for n in range(ORDERS):
        _, execution = make_order(symbol=f"P{n:02d}", n=n + 1)
        executions.append(execution)
        for update in fill_updates(execution):
            producer.produce(
                topic, key=execution.symbol.encode(), value=json.dumps(update).encode()
            )
    assert producer.flush(10) == 0
    total = ORDERS * 3

    env = trading_env(
        tmp_path / "none.csv",
        tmp_path,
        "memory://",
        TRADING_ORDER_FEED_ENABLED="true",
        TRADING_ORDER_FEED_BOOTSTRAP_SERVERS=kafka_bootstrap,
        TRADING_ORDER_FEED_TOPIC=topic,
        TRADING_ORDER_FEED_GROUP_ID=f"pgdrop-{suffix}",
        TRADING_ORDER_FEED_AUTO_OFFSET_RESET="earliest",
        TRADING_ORDER_FEED_POLL_MS="100",
        TRADING_ORDER_FEED_BATCH_SIZE="4",
        TRADING_ORDER_FEED_DLQ_TOPIC=dlq,
    )
    consumer = subprocess.Popen(
        [sys.executable, "manage.py", "run_orderfeed_consumer", "--idle-exit-seconds", "3"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        terminated = 0
        assert wait_for(lambda: OrderEvent.objects.exists(), timeout=60, step=0.01)
        while consumer.poll() is None and OrderEvent.objects.count() < total:
            terminated += _terminate_other_backends()
            time.sleep(0.05)
        out, err = consumer.communicate(timeout=60)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait(timeout=10)

    assert consumer.returncode == 0, err[-3000:]
    stats = json.loads(out.strip().splitlines()[-1])
    assert terminated >= 1
    assert stats["transient_retries"] >= 1, stats  # it saw the drop and retried the batch
    assert stats["dead_letters"] == 0
    assert DeadLetterMessage.objects.count() == 0
    assert OrderEvent.objects.count() == total
    assert set(OrderEvent.objects.values_list("outcome", flat=True)) == {"applied"}
    assert_executions_filled_once(executions)
    assert set(TradeDecision.objects.values_list("status", flat=True)) == {"filled"}
