"""Kafka consumer settings: each one, set to two values, changes the librdkafka configuration the
consumer is built with (what `BatchConsumer.run` hands to `confluent_kafka.Consumer`), the batch
it polls, when it refreshes its lag, or whether it can reach the broker at all."""

from __future__ import annotations

import os
import time
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
