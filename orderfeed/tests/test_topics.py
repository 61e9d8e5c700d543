"""Topics as code on the real broker: `manage.py kafka_topics ensure|check`, and clients that
refuse a missing topic instead of creating it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from django.core.management import call_command
from django.core.management.base import CommandError

from orderfeed.consumer import order_feed_consumer
from orderfeed.simfeed import reset_producer, sim_trade_updates_flush
from orderfeed.tests.conftest import create_topics, make_decision
from orderfeed.tests.test_simfeed import _order_then_fill
from torghut_site.kafka.topics import TopicMissing, topic_exists, topics_forget
from trading.simbroker.models import SimTradeUpdate

pytestmark = [pytest.mark.services]

HOUR_MS = 3600 * 1000


def exists(bootstrap: str, topic: str) -> bool:
    # asked without creating it (an admin client would otherwise create what it asks about)
    admin = AdminClient({"bootstrap.servers": bootstrap, "allow.auto.create.topics": False})
    return topic_exists(admin, topic, timeout=10)


@pytest.fixture
def names(settings, kafka_bootstrap) -> Iterator[dict[str, str]]:
    """Order-feed settings naming three topics that do not exist yet."""
    suffix = uuid.uuid4().hex[:12]
    topics = {
        "v1": f"test.topics.v1.{suffix}",
        "v2": f"test.topics.v2.{suffix}",
        "dlq": f"test.topics.dlq.{suffix}",
    }
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = kafka_bootstrap
    settings.TRADING_ORDER_FEED_TOPIC = topics["v1"]
    settings.TRADING_ORDER_FEED_TOPIC_V2 = topics["v2"]
    settings.TRADING_ORDER_FEED_DLQ_TOPIC = topics["dlq"]
    settings.TRADING_ORDER_FEED_KAFKA = {}
    settings.TRADING_ORDER_FEED_TOPIC_PARTITIONS = 4
    settings.TRADING_ORDER_FEED_TOPIC_REPLICATION = 1
    settings.TRADING_ORDER_FEED_TOPIC_RETENTION_MS = 2 * HOUR_MS
    settings.TRADING_ORDER_FEED_DLQ_TOPIC_RETENTION_MS = 5 * HOUR_MS
    # the other consumers are switched off: their topics are not in the plan
    settings.TRADING_SIGNAL_SOURCE = "replay"
    settings.WHITEPAPER_KAFKA_ENABLED = False
    topics_forget()
    reset_producer()
    yield topics
    reset_producer()
    topics_forget()


def run(*args: str) -> tuple[dict[str, Any], str | None]:
    """`kafka_topics <args> --json`: (its document, the CommandError's message or None)."""
    out = StringIO()
    try:
        call_command("kafka_topics", *args, "--json", stdout=out, stderr=StringIO())
    except CommandError as exc:
        return json.loads(out.getvalue()), str(exc)
    return json.loads(out.getvalue()), None


def summary(document: dict[str, Any]) -> dict[str, tuple[str, int | None, int | None]]:
    return {
        t["topic"]: (t["status"], t["actual"]["partitions"], t["actual"]["retention_ms"])
        for t in document["topics"]
    }


def test_ensure_creates_every_configured_topic_then_is_a_no_op(names, kafka_bootstrap):
    v1, v2, dlq = names["v1"], names["v2"], names["dlq"]
    document, error = run("check")
    assert error == f"3 of 3 topics missing or drifted: {v2}, {v1}, {dlq}"
    assert summary(document) == {
        v2: ("missing", None, None),
        v1: ("missing", None, None),
        dlq: ("missing", None, None),
    }
    assert [exists(kafka_bootstrap, t) for t in (v1, v2, dlq)] == [False, False, False]

    document, error = run("ensure")
    assert error is None
    assert summary(document) == {
        v2: ("created", 4, 2 * HOUR_MS),
        v1: ("created", 4, 2 * HOUR_MS),
        dlq: ("created", 1, 5 * HOUR_MS),
    }
    assert {t["topic"]: t["actual"]["replication"] for t in document["topics"]} == {
        v2: 1,
        v1: 1,
        dlq: 1,
    }

    document, error = run("ensure")
    assert error is None
    assert summary(document) == {
        v2: ("ok", 4, 2 * HOUR_MS),
        v1: ("ok", 4, 2 * HOUR_MS),
        dlq: ("ok", 1, 5 * HOUR_MS),
    }
    document, error = run("check")
    assert (document["ok"], error) == (True, None)


def test_check_reports_drift_and_fails_and_ensure_grows_only_when_asked(
    names, kafka_bootstrap, settings
):
    v1, dlq = names["v1"], names["dlq"]
    settings.TRADING_ORDER_FEED_TOPIC_V2 = ""
    create_topics(kafka_bootstrap, (v1, 2))  # fewer partitions, the broker's retention

    document, error = run("check")
    assert error == f"2 of 2 topics missing or drifted: {v1}, {dlq}"
    assert summary(document) == {v1: ("drift", 2, 7 * 24 * HOUR_MS), dlq: ("missing", None, None)}
    assert document["topics"][0]["notes"] == [
        "fewer partitions than TRADING_ORDER_FEED_TOPIC_PARTITIONS=4: `kafka_topics ensure "
        "--grow-partitions` adds them (keys then move to other partitions)",
        f"retention.ms {7 * 24 * HOUR_MS} differs from TRADING_ORDER_FEED_TOPIC_RETENTION_MS="
        f"{2 * HOUR_MS} (kafka-configs --alter changes it)",
    ]
    assert not exists(kafka_bootstrap, dlq)  # check changes nothing

    # ensure creates what is missing and reports the drift it does not fix (exit 0)
    document, error = run("ensure")
    assert error is None
    assert summary(document) == {
        v1: ("drift", 2, 7 * 24 * HOUR_MS),
        dlq: ("created", 1, 5 * HOUR_MS),
    }

    document, error = run("ensure", "--grow-partitions")
    assert error is None
    assert summary(document)[v1] == ("grown", 4, 7 * 24 * HOUR_MS)
    document, error = run("check")  # the retention still differs: still a failure
    assert error == f"1 of 2 topics missing or drifted: {v1}"

    # more partitions than configured is drift too; nothing is ever removed
    settings.TRADING_ORDER_FEED_TOPIC_PARTITIONS = 3
    document, error = run("ensure", "--grow-partitions")
    assert summary(document)[v1] == ("drift", 4, 7 * 24 * HOUR_MS)


def test_a_replication_the_cluster_cannot_hold_is_an_error_and_creates_nothing(
    names, kafka_bootstrap, settings
):
    settings.TRADING_ORDER_FEED_TOPIC_REPLICATION = 3
    settings.TRADING_ORDER_FEED_TOPIC_V2 = ""
    document, error = run("ensure")
    assert error == f"2 of 2 topics not created: {names['v1']}, {names['dlq']}"
    assert [t["notes"] for t in document["topics"]] == [
        ["TRADING_ORDER_FEED_TOPIC_REPLICATION=3 needs 3 brokers; the cluster has 1"]
    ] * 2
    assert not exists(kafka_bootstrap, names["v1"])


def test_the_plan_follows_which_consumers_are_switched_on(names, settings):
    settings.TRADING_SIGNAL_KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    settings.TRADING_SIGNAL_KAFKA_TOPIC = "ta"
    settings.TRADING_SIGNAL_KAFKA_DLQ_TOPIC = "ta.dlq"
    settings.TRADING_SIGNAL_KAFKA_TOPIC_PARTITIONS = 6
    settings.TRADING_SIGNAL_KAFKA_TOPIC_REPLICATION = 2
    settings.TRADING_SIGNAL_KAFKA_TOPIC_RETENTION_MS = 14
    settings.TRADING_SIGNAL_KAFKA_DLQ_TOPIC_RETENTION_MS = 28
    settings.WHITEPAPER_KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:2"
    settings.WHITEPAPER_KAFKA_TOPIC = "wp"
    settings.WHITEPAPER_KAFKA_DLQ_TOPIC = "wp.dlq"
    settings.WHITEPAPER_KAFKA_TOPIC_PARTITIONS = 1
    settings.WHITEPAPER_KAFKA_TOPIC_REPLICATION = 3
    settings.WHITEPAPER_KAFKA_TOPIC_RETENTION_MS = 7
    settings.WHITEPAPER_KAFKA_DLQ_TOPIC_RETENTION_MS = 30
    from torghut_site.kafka.topics import configured_topics

    def plan() -> list[tuple[str, str, int, int, int]]:
        return [
            (s.cluster.bootstrap_servers, s.name, s.partitions, s.replication, s.retention_ms)
            for s in configured_topics()
        ]

    feed = [(s.cluster.bootstrap_servers, s.name) for s in configured_topics()]
    assert (
        [(b, n) for b, n, *_ in plan()]
        == feed
        == [
            (settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS, names["v2"]),
            (settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS, names["v1"]),
            (settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS, names["dlq"]),
        ]
    )
    settings.TRADING_SIGNAL_SOURCE = "kafka"
    settings.WHITEPAPER_KAFKA_ENABLED = True
    assert plan()[3:] == [
        ("127.0.0.1:1", "ta", 6, 2, 14),
        ("127.0.0.1:1", "ta.dlq", 1, 2, 28),
        ("127.0.0.1:2", "wp", 1, 3, 7),
        ("127.0.0.1:2", "wp.dlq", 1, 3, 30),
    ]
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = ""
    assert [n for _, n, *_ in plan()] == ["ta", "ta.dlq", "wp", "wp.dlq"]


@pytest.mark.django_db
def test_a_consumer_refuses_a_missing_topic_and_creates_nothing(names, kafka_bootstrap, settings):
    settings.TRADING_ORDER_FEED_TOPIC_V2 = ""
    settings.TRADING_ORDER_FEED_GROUP_ID = f"test-topics-{uuid.uuid4().hex[:8]}"
    with pytest.raises(CommandError) as excinfo:
        call_command("run_orderfeed_consumer", "--idle-exit-seconds", "0.5", "--force")
    # both are named: the consumed topic and the dead-letter topic
    assert str(excinfo.value) == (
        f"consumer orderfeed: Kafka topic '{names['dlq']}', '{names['v1']}' does not exist on "
        f"{kafka_bootstrap}; run `manage.py kafka_topics ensure` (topics are never auto-created)"
    )
    assert not exists(kafka_bootstrap, names["v1"])
    assert not exists(kafka_bootstrap, names["dlq"])

    create_topics(kafka_bootstrap, (names["v1"], 1))  # the DLQ alone missing: still refused
    with pytest.raises(TopicMissing) as missing:
        order_feed_consumer(idle_exit_seconds=0.5).run()
    assert missing.value.topics == [names["dlq"]]
    assert not exists(kafka_bootstrap, names["dlq"])


@pytest.mark.django_db
def test_the_sim_feed_leaves_its_updates_unpublished_on_a_missing_topic(
    names, kafka_bootstrap, settings
):
    settings.TRADING_ORDER_FEED_ENABLED = True
    settings.TRADING_ORDER_FEED_TOPIC_V2 = ""
    settings.SIMULATED_BROKER_SLIPPAGE_BPS = 0
    _order_then_fill(make_decision(status="submitting"))
    assert SimTradeUpdate.objects.filter(published_at__isnull=True).count() == 2

    with pytest.raises(TopicMissing) as excinfo:
        sim_trade_updates_flush(account_label="paper")
    assert str(excinfo.value) == (
        f"simulated broker feed: Kafka topic '{names['v1']}' does not exist on {kafka_bootstrap}; "
        "run `manage.py kafka_topics ensure` (topics are never auto-created)"
    )
    assert SimTradeUpdate.objects.filter(published_at__isnull=True).count() == 2
    assert not exists(kafka_bootstrap, names["v1"])

    call_command("kafka_topics", "ensure", stdout=StringIO())
    assert sim_trade_updates_flush(account_label="paper") == 2
    assert SimTradeUpdate.objects.filter(published_at__isnull=True).count() == 0
