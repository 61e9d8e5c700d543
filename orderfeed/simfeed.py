"""The simulated broker's trade updates on the order feed.

The simulated broker writes Alpaca-shaped updates to an outbox (`SimTradeUpdate`) in the same
transaction as the order change. `sim_trade_updates_flush` moves them on:
- with the order feed enabled (Kafka configured) it produces them to the order-feed topic, keyed
  by symbol with an idempotent producer, exactly as the Alpaca bridge does, and marks them
  published after the broker acknowledged them (a crash in between republishes; the consumer's
  fingerprint dedupe absorbs it); a topic that does not exist is never created: the flush raises
  `TopicMissing` (run `manage.py kafka_topics ensure`) and the updates stay unpublished;
- without Kafka (the embedded default) it applies them directly through the same ingestion code
  the consumer runs, in the same transaction that marks them published, under the synthetic
  log position `simbroker.<lane>` / partition 0 / offset = the update's sequence number.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from django.conf import settings
from django.db import transaction

from orderfeed.services import IngestResult, order_events_ingest
from torghut_site.flags import flag_enabled
from torghut_site.kafka.clients import kafka_producer, producer_release
from torghut_site.kafka.config import producer_config
from torghut_site.kafka.messages import RawMessage
from torghut_site.kafka.topics import topics_require
from trading.simbroker.models import SimTradeUpdate
from trading.simbroker.services import trade_updates_mark_published

logger = logging.getLogger(__name__)

_producer: Producer | None = None
_producer_pid = 0  # the process that made `_producer`: librdkafka's threads do not survive fork
_producer_lock = threading.Lock()


def sim_envelope(update: SimTradeUpdate, account_label: str) -> dict[str, Any]:
    return {
        "channel": "trade_updates",
        "payload": update.payload,
        "seq": update.seq,
        "accountLabel": account_label,
        "version": 2,
        "source": "simulated",
    }


def sim_feed_topic() -> str:
    return settings.TRADING_ORDER_FEED_TOPIC_V2 or settings.TRADING_ORDER_FEED_TOPIC


def sim_trade_updates_flush(*, account_label: str, limit: int = 1000) -> int:
    """Publish (Kafka) or apply (embedded) this lane's pending simulated trade updates.

    The order-feed flag is read on every flush, so a flip in Flipt switches the path at the next
    cycle; both paths dedupe by event. Without bootstrap servers (a flag switched on over an
    embedded configuration) there is no Kafka to publish to, and the updates are applied here.
    """
    if flag_enabled("TRADING_ORDER_FEED_ENABLED") and settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS:
        return _publish(account_label=account_label, limit=limit)
    return _apply_directly(account_label=account_label, limit=limit).persisted


def _pending(account_label: str, limit: int) -> list[SimTradeUpdate]:
    return list(
        SimTradeUpdate.objects.select_for_update(skip_locked=True)
        .filter(account__account_label=account_label, published_at__isnull=True)
        .order_by("seq")[:limit]
    )


def _apply_directly(*, account_label: str, limit: int) -> IngestResult:
    with transaction.atomic():
        updates = _pending(account_label, limit)
        if not updates:
            return IngestResult()
        messages = [
            RawMessage(
                topic=f"simbroker.{account_label}",
                partition=0,
                offset=update.seq,
                key=str(update.payload.get("order", {}).get("symbol", "")).encode(),
                value=json.dumps(sim_envelope(update, account_label)).encode(),
            )
            for update in updates
        ]
        result = order_events_ingest(messages, default_account=account_label)
        trade_updates_mark_published(ids=[u.pk for u in updates])
    return result


def _publish(*, account_label: str, limit: int) -> int:
    topic = sim_feed_topic()
    producer = _shared_producer()
    # before anything is taken from the outbox (checked once per process)
    topics_require(
        producer,
        [topic],
        bootstrap_servers=settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS,
        user="simulated broker feed",
    )
    with transaction.atomic():
        updates = _pending(account_label, limit)
        if not updates:
            return 0
        failed: list[str] = []

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                failed.append(str(err))

        for update in updates:
            producer.produce(
                topic,
                key=str(update.payload.get("order", {}).get("symbol", "")).encode(),
                value=json.dumps(sim_envelope(update, account_label)).encode(),
                on_delivery=delivered,
            )
        remaining = producer.flush(10)
        if failed or remaining:
            # not marked: the next flush publishes them again (the consumer dedupes)
            raise KafkaException(
                KafkaError(KafkaError._MSG_TIMED_OUT, f"order feed publish failed: {failed[:3]}")
            )
        trade_updates_mark_published(ids=[u.pk for u in updates])
    return len(updates)


def _shared_producer() -> Producer:
    global _producer, _producer_pid
    with _producer_lock:
        if _producer is None or _producer_pid != os.getpid():
            _producer_pid = os.getpid()
            _producer = kafka_producer(
                producer_config(
                    bootstrap_servers=settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS,
                    client_id=f"{settings.TRADING_ORDER_FEED_CLIENT_ID}-simbroker",
                    security=settings.TRADING_ORDER_FEED_KAFKA,
                )
            )
        return _producer


def reset_producer() -> None:
    """Forget the shared producer (tests switch brokers between cases)."""
    global _producer
    with _producer_lock:
        if _producer is not None:
            producer_release(_producer, 5)
        _producer = None
