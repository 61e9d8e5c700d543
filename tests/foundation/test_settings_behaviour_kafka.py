"""Kafka consumer settings: each one, set to two values, changes the librdkafka configuration the
consumer is built with (what `BatchConsumer.run` hands to `confluent_kafka.Consumer`), the batch
it polls, when it refreshes its lag, or whether it can reach the broker at all."""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from tests.foundation.test_settings_behaviour_site import settings_from_env
from torghut_site.kafka.consumer import BatchConsumer

BOOTSTRAP = os.environ.get("TEST_KAFKA_BOOTSTRAP", "127.0.0.1:19092")


def _consumers() -> dict[str, Any]:
    from orderfeed.consumer import order_feed_consumer
    from trading.services.signal_feed import signal_consumer
    from whitepapers.consumer import whitepaper_consumer

    return {
        "TRADING_ORDER_FEED": order_feed_consumer,
        "TRADING_SIGNAL_KAFKA": signal_consumer,
        "WHITEPAPER_KAFKA": whitepaper_consumer,
    }


@pytest.fixture
def kafka_settings(settings):
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = BOOTSTRAP
    settings.TRADING_SIGNAL_KAFKA_BOOTSTRAP_SERVERS = BOOTSTRAP
    settings.WHITEPAPER_KAFKA_BOOTSTRAP_SERVERS = BOOTSTRAP
    return settings


def _built(prefix: str) -> BatchConsumer:
    consumer: BatchConsumer = _consumers()[prefix]()
    return consumer


@pytest.mark.parametrize(
    ("prefix", "setting"),
    [
        ("TRADING_ORDER_FEED", "TRADING_ORDER_FEED_CLIENT_ID"),
        ("TRADING_SIGNAL_KAFKA", "TRADING_SIGNAL_KAFKA_CLIENT_ID"),
        ("WHITEPAPER_KAFKA", "WHITEPAPER_KAFKA_CLIENT_ID"),
    ],
)
def test_each_consumer_client_id_is_its_kafka_client_id(kafka_settings, prefix, setting):
    for client_id in ("torghut-a", "torghut-b"):
        setattr(kafka_settings, setting, client_id)
        assert _built(prefix).settings.consumer_config()["client.id"] == client_id


def test_whitepaper_batch_size_is_the_polled_batch(kafka_settings):
    for size in (7, 70):
        kafka_settings.WHITEPAPER_KAFKA_BATCH_SIZE = size
        assert _built("WHITEPAPER_KAFKA").settings.batch_size == size


def _sasl(protocol: str, mechanism: str, username: str, password: str) -> dict[str, str]:
    return {
        protocol: "sasl_plaintext",
        mechanism: "scram-sha-256",
        username: "torghut",
        password: "s3cret",
    }


SASL = {
    "TRADING_ORDER_FEED": _sasl(
        "TRADING_ORDER_FEED_SECURITY_PROTOCOL",
        "TRADING_ORDER_FEED_SASL_MECHANISM",
        "TRADING_ORDER_FEED_SASL_USERNAME",
        "TRADING_ORDER_FEED_SASL_PASSWORD",
    ),
    "TRADING_SIGNAL_KAFKA": _sasl(
        "TRADING_SIGNAL_KAFKA_SECURITY_PROTOCOL",
        "TRADING_SIGNAL_KAFKA_SASL_MECHANISM",
        "TRADING_SIGNAL_KAFKA_SASL_USERNAME",
        "TRADING_SIGNAL_KAFKA_SASL_PASSWORD",
    ),
    "WHITEPAPER_KAFKA": _sasl(
        "WHITEPAPER_KAFKA_SECURITY_PROTOCOL",
        "WHITEPAPER_KAFKA_SASL_MECHANISM",
        "WHITEPAPER_KAFKA_SASL_USERNAME",
        "WHITEPAPER_KAFKA_SASL_PASSWORD",
    ),
}


@pytest.mark.parametrize(
    ("prefix", "attr"),
    [
        ("TRADING_ORDER_FEED", "TRADING_ORDER_FEED_KAFKA"),
        ("TRADING_SIGNAL_KAFKA", "TRADING_SIGNAL_KAFKA"),
        ("WHITEPAPER_KAFKA", "WHITEPAPER_KAFKA"),
    ],
)
def test_each_consumer_security_block_reaches_librdkafka(monkeypatch, kafka_settings, prefix, attr):
    plain = settings_from_env(monkeypatch, {})[attr]
    setattr(kafka_settings, attr, plain)
    config = _built(prefix).settings.consumer_config()
    assert config["security.protocol"] == "PLAINTEXT"
    assert "sasl.username" not in config
    setattr(kafka_settings, attr, settings_from_env(monkeypatch, SASL[prefix])[attr])
    config = _built(prefix).settings.consumer_config()
    assert {k: config[k] for k in config if k.startswith(("security.", "sasl."))} == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "torghut",
        "sasl.password": "s3cret",
    }


@pytest.mark.services
def test_the_security_protocol_decides_whether_the_plaintext_broker_answers(
    monkeypatch, kafka_settings
):
    def reachable(env: dict[str, str]) -> bool:
        kafka_settings.TRADING_ORDER_FEED_KAFKA = settings_from_env(monkeypatch, env)[
            "TRADING_ORDER_FEED_KAFKA"
        ]
        config = _built("TRADING_ORDER_FEED").settings.consumer_config()
        consumer = Consumer(config)
        try:
            consumer.list_topics(timeout=1.5)
        except KafkaException:
            return False
        finally:
            consumer.close()
        return True

    assert reachable({}) is True
    assert reachable({"TRADING_ORDER_FEED_SECURITY_PROTOCOL": "ssl"}) is False


@pytest.mark.services
def test_lag_interval_throttles_the_lag_refresh(kafka_settings):
    consumer = _built("TRADING_ORDER_FEED")
    client = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "coverage-lag"})
    client.assign([TopicPartition("coverage-lag", 0, 0)])
    consumer._consumer = client
    consumer._assigned = {("coverage-lag", 0)}
    try:
        for interval, wait, refreshed in ((3600.0, 0.0, False), (0.1, 0.15, True)):
            kafka_settings.KAFKA_CONSUMER_LAG_INTERVAL_SECONDS = interval
            consumer.settings = _built("TRADING_ORDER_FEED").settings
            consumer._last_lag = time.monotonic()
            consumer._lag = {"sentinel[0]": 7}
            time.sleep(wait)
            consumer._report_lag()
            assert ("sentinel[0]" not in consumer._lag) is refreshed
    finally:
        client.close()


class PauseCounting(Consumer):
    """A real consumer that counts the times its partitions were paused."""

    pauses = 0

    def pause(self, partitions: list[TopicPartition]) -> None:
        if partitions:
            self.pauses += 1
        super().pause(partitions)


class ArrivalTimes:
    def __init__(self) -> None:
        self.arrived: list[tuple[int, float]] = []

    def handle_batch(self, messages: Any) -> list[Any]:
        self.arrived.extend((m.offset, time.monotonic()) for m in messages)
        return []


def _idle_consumer(
    kafka_settings: Any, topic: str, pause_ms: int
) -> tuple[BatchConsumer, ArrivalTimes, list[PauseCounting]]:
    from prometheus_client import CollectorRegistry, Counter

    from torghut_site.kafka.config import consumer_settings_from
    from torghut_site.kafka.consumer import ConsumerMetrics
    from torghut_site.models import HeartbeatKind

    kafka_settings.KAFKA_CONSUMER_IDLE_PAUSE_MS = pause_ms
    settings = consumer_settings_from(
        "TRADING_SIGNAL_KAFKA",
        name=f"idle-{pause_ms}",
        heartbeat_kind=HeartbeatKind.SIGNAL_CONSUMER,
        security={},
        unconfigured=RuntimeError("unconfigured"),
        topics=(topic,),
        group_id=f"idle-{pause_ms}-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        dlq_topic="",  # no dead letters here: nothing to require on the broker
    )
    registry = CollectorRegistry()
    metrics = ConsumerMetrics(
        messages=Counter("m", "m", registry=registry), errors=Counter("e", "e", registry=registry)
    )
    handler, built = ArrivalTimes(), []

    def factory(config: dict[str, Any]) -> PauseCounting:
        built.append(PauseCounting(config))
        return built[-1]

    return BatchConsumer(settings, handler, metrics, consumer_factory=factory), handler, built


def _run_closing(consumer: BatchConsumer) -> None:
    from django.db import connections

    try:
        consumer.run()
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
@pytest.mark.services
def test_idle_pause_pauses_an_idle_consumer_and_the_next_record_still_arrives(kafka_settings):
    """KAFKA_CONSUMER_IDLE_PAUSE_MS=0 never pauses; 300 pauses an idle consumer's partitions
    (noida-db would otherwise answer its empty fetches thousands of times a second) and a record
    produced while it is idle is handled within the pause plus a short fetch window. Both
    consumers run at once (one group join's wait)."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    topic = f"test.idle.{uuid.uuid4().hex}"
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic(topic, num_partitions=1)])[topic].result(timeout=10)
    runs = {ms: _idle_consumer(kafka_settings, topic, ms) for ms in (0, 300)}
    threads = [threading.Thread(target=_run_closing, args=(c,)) for c, _, _ in runs.values()]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 20
        while not all(c._assigned for c, _, _ in runs.values()):
            assert time.monotonic() < deadline, "the consumers did not join in 20 s"
            time.sleep(0.05)
        time.sleep(1.5)  # idle: the pauses grow 50, 100, 200, 300 ms
        producer = Producer({"bootstrap.servers": BOOTSTRAP})
        producer.produce(topic, value=b"{}")
        producer.flush(5)
        produced = time.monotonic()
        while not all(h.arrived for _, h, _ in runs.values()):
            assert time.monotonic() < produced + 5, {
                ms: h.arrived for ms, (_, h, _) in runs.items()
            }
            time.sleep(0.01)
    finally:
        for consumer, _, _ in runs.values():
            consumer.stop()
        for thread in threads:
            thread.join(timeout=10)
    (_, never, [plain]), (_, paused, [pausing]) = runs[0], runs[300]
    assert plain.pauses == 0
    assert pausing.pauses >= 4
    assert (
        [offset for offset, _ in never.arrived] == [offset for offset, _ in paused.arrived] == [0]
    )
    assert paused.arrived[0][1] - produced < 0.3 + 0.3  # the pause, the window and slack
