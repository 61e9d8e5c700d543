"""The whitepaper consumer: GitHub webhook events from Froussard's Kafka topic.

Runs on the shared `torghut_site.kafka.consumer.BatchConsumer`: a polled batch is stored as
`GithubIssueEvent` rows in one transaction (a redelivered record is skipped by its unique log
position), then the offsets are stored. Processing — PDF download, storage, AgentRun dispatch —
happens in Celery tasks queued after the commit, so a slow PDF host never stalls the partition
and a crash never loses an event (the sweep re-queues what is still pending). Records that are not
JSON objects are dead-lettered, and so is a record whose log position is stored with another
payload (`offset_reused`: the log handed the offset out again); events of other kinds (pushes,
pull requests…) are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction

from torghut_site.kafka.config import ConsumerNotConfigured
from torghut_site.kafka.consumer import BatchConsumer, ConsumerMetrics, consumer_build
from torghut_site.kafka.messages import DeadLetter, RawMessage
from torghut_site.models import HeartbeatKind
from whitepapers.github import IntakeRefused, github_event_normalize
from whitepapers.metrics import (
    WHITEPAPER_EVENTS,
    WHITEPAPER_KAFKA_ERRORS,
    WHITEPAPER_KAFKA_MESSAGES,
)
from whitepapers.services.intake import (
    github_event_positions_reused,
    github_events_record_from_kafka,
)


class WhitepaperKafkaNotConfigured(ConsumerNotConfigured):
    pass


class WhitepaperEventHandler:
    def handle_batch(self, messages: Sequence[RawMessage]) -> list[DeadLetter]:
        letters: list[DeadLetter] = []
        rows: list[tuple[str, int, int, dict[str, Any]]] = []
        for message in messages:
            try:
                payload: Any = json.loads(message.value or b"")
            except ValueError as exc:
                letters.append(DeadLetter(message, "invalid_json", f"not JSON: {exc}"))
                continue
            if not isinstance(payload, dict):
                letters.append(DeadLetter(message, "invalid_json", "not a JSON object"))
                continue
            try:
                github_event_normalize(payload)
            except IntakeRefused:
                WHITEPAPER_EVENTS.labels(source="kafka", reason="ignored_event").inc()
                continue
            rows.append((message.topic, message.partition, message.offset, payload))
        if rows:
            with transaction.atomic():
                github_events_record_from_kafka(rows)
                reused = set(github_event_positions_reused(rows))
            letters.extend(
                DeadLetter.offset_reused(m, "a stored event with another payload")
                for m in messages
                if (m.topic, m.partition, m.offset) in reused
            )
        return letters


def whitepaper_consumer(
    *, idle_exit_seconds: float | None = None, max_messages: int | None = None, **overrides: Any
) -> BatchConsumer:
    return consumer_build(
        "WHITEPAPER_KAFKA",
        handler=WhitepaperEventHandler(),
        metrics=ConsumerMetrics(messages=WHITEPAPER_KAFKA_MESSAGES, errors=WHITEPAPER_KAFKA_ERRORS),
        idle_exit_seconds=idle_exit_seconds,
        max_messages=max_messages,
        name="whitepaper",
        heartbeat_kind=HeartbeatKind.WHITEPAPER_CONSUMER,
        security=settings.WHITEPAPER_KAFKA,
        unconfigured=WhitepaperKafkaNotConfigured(
            "WHITEPAPER_KAFKA_BOOTSTRAP_SERVERS (or TRADING_ORDER_FEED_BOOTSTRAP_SERVERS) is not "
            "set: the whitepaper consumer has no Kafka to read"
        ),
        **overrides,
    )
