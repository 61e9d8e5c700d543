"""First boot of the order feed on the real broker: a consumer group with no committed offset
loses no trade update, whether it joins before the first record is produced or after.

The topic exists (`manage.py kafka_topics ensure`, as the bring-up runs it); the consumer's group
is new. Each order's three updates (new, partial fill, fill) are keyed by symbol and spread over
the three partitions. "Lost" counts the produced updates that have no stored event. The start
position of each partition is logged and counted (`torghut_kafka_consumer_start_position_total`)
with its reason: earliest for a new group, own_state when the database already holds events of the
partition, committed for a group that has offsets, configured_latest (a WARNING) when an operator
set TRADING_ORDER_FEED_AUTO_OFFSET_RESET=latest, which is still honoured and skips what was there.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from io import StringIO
from typing import Any

import pytest
from confluent_kafka import Producer
from django.core.management import call_command
from django.db import connections
from prometheus_client import REGISTRY

from orderfeed.consumer import order_feed_consumer
from orderfeed.models import OrderEvent
from orderfeed.tests.conftest import Feed, assert_executions_filled_once, fill_updates, make_order
from torghut_site.kafka.config import producer_config
from torghut_site.kafka.consumer import BatchConsumer, ConsumerStats
from torghut_site.kafka.topics import topics_forget
from trading.models import Execution

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

ORDERS = 20  # 60 updates
UPDATES = ORDERS * 3


def starts(reason: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "torghut_kafka_consumer_start_position_total",
            {"consumer": "orderfeed", "reason": reason},
        )
        or 0.0
    )


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def cold(settings, kafka_bootstrap) -> Iterator[Feed]:
    """A new group on topics that `kafka_topics ensure` created, with the offset reset left at
    its default."""
    suffix = uuid.uuid4().hex[:12]
    feed = Feed(
        bootstrap=kafka_bootstrap,
        topic=f"test.first-boot.v1.{suffix}",
        topic_v2="",
        dlq=f"test.first-boot.dlq.{suffix}",
        group=f"test-first-boot-{suffix}",
    )
    settings.TRADING_ORDER_FEED_ENABLED = True
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = kafka_bootstrap
    settings.TRADING_ORDER_FEED_TOPIC = feed.topic
    settings.TRADING_ORDER_FEED_TOPIC_V2 = ""
    settings.TRADING_ORDER_FEED_DLQ_TOPIC = feed.dlq
    settings.TRADING_ORDER_FEED_GROUP_ID = feed.group
    settings.TRADING_ORDER_FEED_POLL_MS = 100
    settings.TRADING_ORDER_FEED_KAFKA = {}
    settings.TRADING_ORDER_FEED_TOPIC_PARTITIONS = 3
    settings.TRADING_ORDER_FEED_TOPIC_REPLICATION = 1
    settings.TRADING_SIGNAL_SOURCE = "replay"
    settings.WHITEPAPER_KAFKA_ENABLED = False
    # the default: a new group reads what the log holds
    assert settings.TRADING_ORDER_FEED_AUTO_OFFSET_RESET == "earliest"
    topics_forget()
    call_command("kafka_topics", "ensure", stdout=StringIO())
    yield feed
    topics_forget()


class Running:
    """A consumer on its own thread (the test thread produces meanwhile)."""

    def __init__(self, **options: Any) -> None:
        self.consumer: BatchConsumer = order_feed_consumer(**options)
        self.stats: list[ConsumerStats] = []
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.stats.append(self.consumer.run())
        finally:
            connections.close_all()  # this thread's own database connection

    def joined(self) -> None:
        """Wait until the group gave it the three partitions."""
        wait_for(lambda: len(self.consumer._assigned) == 3)

    def finish(self, timeout: float = 30.0) -> ConsumerStats:
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.consumer.stop()
            self.thread.join(10)
            pytest.fail("the consumer did not read every update in time")
        return self.stats[0]


def produce_orders(feed: Feed) -> list[Execution]:
    """ORDERS orders' updates, by one idempotent producer (as the sim feed publishes them)."""
    executions = [make_order(n=n, symbol=f"SYM{n}")[1] for n in range(1, ORDERS + 1)]
    producer = Producer(producer_config(bootstrap_servers=feed.bootstrap, client_id="first-boot"))
    for execution in executions:
        for update in fill_updates(execution):
            producer.produce(feed.topic, key=execution.symbol.encode(), value=json.dumps(update))
    assert producer.flush(10) == 0
    return executions


def lost(executions: list[Execution]) -> int:
    """Produced updates (three per order) without a stored event."""
    stored = OrderEvent.objects.filter(execution__in=executions).count()
    return len(executions) * 3 - stored


def start_reasons(caplog) -> list[tuple[int, str, str]]:
    return sorted(
        (r.partition, str(r.offset), r.reason)
        for r in caplog.records
        if r.getMessage() == "partition start position"
    )


def test_consumer_started_before_any_producer_loses_nothing(cold, caplog):
    caplog.set_level(logging.INFO, logger="torghut_site.kafka")
    earliest = starts("earliest")
    running = Running(max_messages=UPDATES)
    running.joined()
    wait_for(lambda: starts("earliest") - earliest == 3)  # every partition placed

    executions = produce_orders(cold)
    stats = running.finish()

    assert stats.messages == UPDATES
    assert lost(executions) == 0
    assert_executions_filled_once(executions)
    assert start_reasons(caplog) == [(p, "earliest", "earliest") for p in range(3)]


def test_updates_produced_before_the_first_join_are_all_applied(cold, caplog):
    caplog.set_level(logging.INFO, logger="torghut_site.kafka")
    executions = produce_orders(cold)  # the worker's feed ran first: the log holds them
    before = {r: starts(r) for r in ("earliest", "own_state", "committed")}

    stats = Running(max_messages=UPDATES).finish()

    assert stats.messages == UPDATES
    assert lost(executions) == 0
    assert_executions_filled_once(executions)
    assert starts("earliest") - before["earliest"] == 3
    assert start_reasons(caplog) == [(p, "earliest", "earliest") for p in range(3)]

    # the same group again: its committed offsets; nothing read twice
    caplog.clear()
    assert Running(idle_exit_seconds=0.5).finish().messages == 0
    assert starts("committed") - before["committed"] == 3
    # a new group (offsets expired, a renamed group): where the stored events end
    caplog.clear()
    partitions = sorted(set(OrderEvent.objects.values_list("source_partition", flat=True)))
    # every record was stored: offsets 0..n-1 of each partition
    stored = OrderEvent.objects.filter(source_topic=cold.topic)
    next_offsets = {p: stored.filter(source_partition=p).count() for p in range(3)}
    stats = Running(idle_exit_seconds=0.5, group_id=f"{cold.group}-renamed").finish()
    assert stats.messages == 0
    assert start_reasons(caplog) == [
        (p, str(next_offsets[p]), "own_state") if p in partitions else (p, "earliest", "earliest")
        for p in range(3)
    ]
    assert starts("own_state") - before["own_state"] == len(partitions)
    assert OrderEvent.objects.count() == UPDATES


def test_a_configured_latest_is_honoured_warned_and_counted(cold, settings, caplog):
    caplog.set_level(logging.INFO, logger="torghut_site.kafka")
    settings.TRADING_ORDER_FEED_AUTO_OFFSET_RESET = "latest"
    _, execution = make_order(n=1, symbol="SYM1")
    for update in fill_updates(execution):
        cold.produce(update, key=b"SYM1")
    configured_latest = starts("configured_latest")

    stats = Running(idle_exit_seconds=0.5).finish()

    assert stats.messages == 0  # what the log held was skipped, as configured
    assert lost([execution]) == 3
    assert starts("configured_latest") - configured_latest == 3
    warnings = [
        (r.levelname, r.partition, r.offset, r.reason)
        for r in caplog.records
        if r.getMessage() == "partition start position"
    ]
    assert sorted(warnings) == [("WARNING", p, "latest", "configured_latest") for p in range(3)]
