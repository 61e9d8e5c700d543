"""A consumer started while Kafka is down waits for it (logged and counted, with backoff) instead
of exiting, then reads what was produced once the broker is back: nothing is lost and nothing had
to restart it. A missing topic, by contrast, stops it at once (orderfeed/tests/test_topics.py)."""

from __future__ import annotations

import json
import logging
import time
import uuid

import pytest

from orderfeed.models import OrderEvent
from orderfeed.tests.conftest import create_topics, fill_updates, make_order
from orderfeed.tests.test_first_boot import Running, wait_for
from tests.faults.conftest import KafkaBroker, private_kafka  # noqa: F401 - fixture
from torghut_site.kafka import topics
from torghut_site.kafka.clients import kafka_producer
from torghut_site.kafka.config import producer_config
from torghut_site.kafka.topics import topics_forget

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

WAITING = "Kafka unreachable at start; waiting"


def test_a_consumer_started_while_kafka_is_down_waits_then_reads_everything(
    settings,
    private_kafka: KafkaBroker,  # noqa: F811 - the fixture
    caplog,
    monkeypatch,
):
    suffix = uuid.uuid4().hex[:10]
    topic, dlq = f"wait.{suffix}", f"wait.dlq.{suffix}"
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = private_kafka.bootstrap
    settings.TRADING_ORDER_FEED_TOPIC = topic
    settings.TRADING_ORDER_FEED_TOPIC_V2 = ""
    settings.TRADING_ORDER_FEED_DLQ_TOPIC = dlq
    settings.TRADING_ORDER_FEED_GROUP_ID = f"wait-{suffix}"
    settings.TRADING_ORDER_FEED_POLL_MS = 100
    settings.TRADING_ORDER_FEED_KAFKA = {}
    create_topics(private_kafka.bootstrap, (topic, 1), (dlq, 1))
    time.sleep(1.5)  # noida-db writes its topics to disk about once a second
    private_kafka.kill()
    topics_forget()
    monkeypatch.setattr(topics, "TOPIC_CHECK_TIMEOUT_SECONDS", 0.5)

    with caplog.at_level(logging.WARNING, logger="torghut_site.kafka"):
        running = Running(retry_backoff_seconds=0.1, retry_backoff_max_seconds=0.5)
        try:
            wait_for(lambda: sum(r.getMessage() == WAITING for r in caplog.records) >= 2)
            assert running.thread.is_alive()  # waiting, not exited

            private_kafka.start()
            _, execution = make_order(n=1, symbol="WAIT")
            producer = kafka_producer(
                producer_config(bootstrap_servers=private_kafka.bootstrap, client_id="wait")
            )
            for update in fill_updates(execution):
                producer.produce(topic, key=b"WAIT", value=json.dumps(update).encode())
            assert producer.flush(15) == 0
            wait_for(lambda: OrderEvent.objects.filter(execution=execution).count() == 3, 30)
        finally:
            running.consumer.stop()
            running.thread.join(15)
    assert not running.thread.is_alive()
    assert running.stats[0].messages == 3
