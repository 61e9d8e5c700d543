"""Every Kafka client we build (producer, consumer, admin) logs through Python logging.

Without a `logger`, librdkafka writes its own lines (`%3|1700000000.123|FAIL|client#producer-1|
...`) straight to file descriptor 2, outside the JSON/text logs and about once per reconnect
attempt per broker while a broker is down. With confluent-kafka's `logger` option they become
records of the `torghut_site.kafka.librdkafka` logger, formatted like every other line:
`librdkafka_fields` turns the record into the message plus `kafka_client` and `facility` fields,
and `RateLimitFilter` lets at most `LIBRDKAFKA_LOG_LIMIT` records of one client and facility
through per `LIBRDKAFKA_LOG_INTERVAL_SECONDS`, counting the rest and logging one
"suppressed N similar messages" line when the window is over.

Delivery: confluent-kafka queues the logs and hands them over when the application serves the
client — a consumer's `poll`/`consume`, a producer's `poll`/`flush` — never on librdkafka's own
threads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from torghut_site.logging import RateLimitFilter

LIBRDKAFKA_LOGGER_NAME = "torghut_site.kafka.librdkafka"
# a reconnect loop logs a FAIL per attempt (librdkafka backs off from 100 ms to 10 s): 5 a minute
# keep the cause in the logs and the rest of the outage in the summary line
LIBRDKAFKA_LOG_LIMIT = 5
LIBRDKAFKA_LOG_INTERVAL_SECONDS = 60.0
# confluent-kafka logs every librdkafka line as logger.log(level, "%s [%s] %s", fac, name, text)
_LIBRDKAFKA_FORMAT = "%s [%s] %s"


class LibrdkafkaFields(logging.Filter):
    """A librdkafka line as the message, with its client name and facility as fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.msg == _LIBRDKAFKA_FORMAT and isinstance(args, tuple) and len(args) == 3:
            facility, client, text = args
            record.msg, record.args = str(text), ()
            record.kafka_client = str(client)
            record.facility = str(facility)
        return True


def librdkafka_key(record: logging.LogRecord) -> tuple[Any, ...]:
    """Records of one client and facility (e.g. FAIL) at one level are "similar"."""
    return (
        record.levelno,
        getattr(record, "kafka_client", ""),
        getattr(record, "facility", record.msg),
    )


librdkafka_logger = logging.getLogger(LIBRDKAFKA_LOGGER_NAME)
librdkafka_rate_limit = RateLimitFilter(
    limit=LIBRDKAFKA_LOG_LIMIT, interval=LIBRDKAFKA_LOG_INTERVAL_SECONDS, key=librdkafka_key
)
librdkafka_logger.addFilter(LibrdkafkaFields())
librdkafka_logger.addFilter(librdkafka_rate_limit)


def with_client_logger(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` with librdkafka's logs routed to `torghut_site.kafka.librdkafka` (a `logger`
    already in it wins)."""
    return {"logger": librdkafka_logger, **config}


def kafka_producer(config: Mapping[str, Any]) -> Producer:
    return Producer(with_client_logger(config))


def kafka_consumer(config: Mapping[str, Any]) -> Consumer:
    return Consumer(with_client_logger(config))


def kafka_admin(config: Mapping[str, Any]) -> AdminClient:
    return AdminClient(with_client_logger(config))


def producer_release(producer: Producer, timeout: float) -> int:
    """Deliver what `producer` holds for up to `timeout` seconds, drop the rest, and close it:
    its librdkafka threads end now instead of reconnecting to a broker for as long as the object
    lives. Returns how many messages were dropped."""
    left = producer.flush(timeout)
    if left:
        producer.purge(in_queue=True, in_flight=True, blocking=False)
        producer.poll(0)
    producer.close()
    return int(left)
