"""The messages a handler refuses: stored in the database, counted, and published to the
dead-letter topic with headers naming where they came from and why."""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from torghut_site.kafka.config import producer_config
from torghut_site.kafka.consumer.core import ConsumerCore
from torghut_site.kafka.consumer.metrics import KAFKA_DEAD_LETTERS
from torghut_site.kafka.messages import DeadLetter, RawMessage
from torghut_site.services import dead_letters_mark_published, dead_letters_record

# the package's one logger name, as before the split (log pipelines filter on it)
logger = logging.getLogger("torghut_site.kafka")


class DeadLetterMixin(ConsumerCore):
    """The dead-letter side of a `BatchConsumer`."""

    def _persist_dead_letters(self, letters: list[DeadLetter]) -> None:

        dead_letters_record(consumer=self.settings.name, letters=letters)

    def _publish_dead_letters(self, letters: list[DeadLetter]) -> None:
        for letter in letters:
            KAFKA_DEAD_LETTERS.labels(consumer=self.settings.name, reason=letter.reason).inc()
            logger.warning(
                "message dead-lettered",
                extra={
                    "consumer": self.settings.name,
                    "topic": letter.message.topic,
                    "partition": letter.message.partition,
                    "offset": letter.message.offset,
                    "reason": letter.reason,
                    "error": letter.error[:300],
                },
            )
        if not self.settings.dlq_topic:
            return

        published: list[RawMessage] = []

        def _on_delivery(letter: DeadLetter) -> Callable[[KafkaError | None, Message], None]:
            def delivered(err: KafkaError | None, msg: Message) -> None:
                if err is None:
                    published.append(letter.message)
                else:
                    logger.warning("dead-letter publish failed", extra={"error": str(err)})

            return delivered

        try:
            producer = self._dlq_producer()
            for letter in letters:
                producer.produce(
                    self.settings.dlq_topic,
                    key=letter.message.key,
                    value=letter.message.value,
                    headers=dead_letter_headers(self.settings.name, letter),
                    on_delivery=_on_delivery(letter),
                )
            producer.flush(10)
        except (KafkaException, BufferError) as exc:
            logger.warning(
                "dead-letter topic unavailable; kept in the database", extra={"error": str(exc)}
            )
        if published:
            self._retry_transient(
                lambda: dead_letters_mark_published(consumer=self.settings.name, messages=published)
            )

    def _dlq_producer(self) -> Producer:
        if self._producer is None:
            self._producer = self._producer_factory(
                producer_config(
                    bootstrap_servers=self.settings.bootstrap_servers,
                    client_id=f"{self.settings.client_id}-dlq",
                    security=self.settings.security,
                )
            )
        return self._producer


def dead_letter_headers(consumer: str, letter: DeadLetter) -> list[tuple[str, str | bytes | None]]:
    return [
        ("x-dlq-consumer", consumer.encode()),
        ("x-dlq-reason", letter.reason.encode()),
        ("x-dlq-error", letter.error[:1000].encode("utf-8", "replace")),
        ("x-dlq-source-topic", letter.message.topic.encode()),
        ("x-dlq-source-partition", str(letter.message.partition).encode()),
        ("x-dlq-source-offset", str(letter.message.offset).encode()),
    ]
