"""Ingest reads and writes through the ORM and the portable bulk helpers.

The embedded default (`make run`: SQLite, simulated broker, no Kafka) applies the simulated
broker's updates through this store; the consumer on Postgres uses `orderfeed.ingest.postgres`.
Both run the same rules (`orderfeed.ingest.rules`) on the same plain values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db.models import Q

from orderfeed.ingest.rules import (
    DECISION_TRANSITION_COLUMNS,
    EVENT_COLUMNS,
    TCA_COLUMNS,
    TRANSITION_COLUMNS,
    BatchState,
    DecisionState,
    ExecutionState,
    Followed,
    Pending,
)
from orderfeed.models import OrderEvent
from torghut_site.db import JsonText, bulk_insert_rows, bulk_update_rows, bulk_upsert_rows
from trading.models import (
    Execution,
    ExecutionTcaMetric,
    ExecutionTransition,
    TradeDecision,
    TradeDecisionTransition,
)

EXECUTION_STATE_FIELDS = (
    "id",
    "decision_id",
    "account_label",
    "broker_order_id",
    "client_order_id",
    "symbol",
    "side",
    "submitted_qty",
    "filled_qty",
    "avg_fill_price",
    "status",
    "order_feed_last_event_ts",
    "order_feed_last_seq",
)
DECISION_STATE_FIELDS = ("id", "strategy_id", "status", "price", "executed_at", "reject_reason")
EXECUTION_WRITE_COLUMNS = (
    "status",
    "filled_qty",
    "avg_fill_price",
    "raw_order",
    "order_feed_last_event_ts",
    "order_feed_last_seq",
    "last_update_at",
    "updated_at",
)


def batch_read(candidates: Sequence[Pending]) -> BatchState:
    """What is already stored of these events, and their executions and decisions, locked."""
    executions, decisions = executions_lock(candidates)
    return BatchState(
        stored_matches(
            [p.update.fingerprint for p in candidates],
            [(p.message.topic, p.message.partition, p.message.offset) for p in candidates],
        ),
        executions,
        decisions,
    )


def stored_matches(
    fingerprints: Iterable[str], positions: Iterable[tuple[str, int, int]]
) -> list[tuple[str, str, int, int]]:
    """Stored events with one of these fingerprints or log positions."""
    by_partition: dict[tuple[str, int], list[int]] = defaultdict(list)
    for topic, partition, offset in positions:
        by_partition[(topic, partition)].append(offset)
    query = Q(event_fingerprint__in=list(fingerprints))
    for (topic, partition), offsets in by_partition.items():
        query |= Q(source_topic=topic, source_partition=partition, source_offset__in=offsets)
    return list(
        OrderEvent.objects.filter(query)
        .order_by()
        .values_list("event_fingerprint", "source_topic", "source_partition", "source_offset")
    )


def executions_lock(
    pending: Sequence[Pending],
) -> tuple[list[ExecutionState], dict[int, DecisionState]]:
    """The executions these events name and their decisions, locked in primary-key order."""
    order_ids: dict[str, set[str]] = defaultdict(set)
    client_ids: dict[str, set[str]] = defaultdict(set)
    for p in pending:
        u = p.update
        if u.broker_order_id:
            order_ids[u.account_label].add(u.broker_order_id)
        if u.client_order_id:
            client_ids[u.account_label].add(u.client_order_id)
    query = Q(pk__in=[])
    for account in sorted(set(order_ids) | set(client_ids)):
        query |= Q(account_label=account) & (
            Q(broker_order_id__in=order_ids[account]) | Q(client_order_id__in=client_ids[account])
        )
    executions = [
        ExecutionState(*row)
        for row in Execution.objects.select_for_update(of=("self",))
        .filter(query)
        .order_by("pk")
        .values_list(*EXECUTION_STATE_FIELDS)
    ]
    return executions, decisions_lock({e.decision_id for e in executions if e.decision_id})


def decisions_lock(ids: Iterable[int]) -> dict[int, DecisionState]:
    """These decisions (what following and TCA read), locked in primary-key order."""
    ids = list(ids)
    if not ids:
        return {}
    return {
        row[0]: DecisionState(*row)
        for row in TradeDecision.objects.select_for_update(of=("self",))
        .filter(pk__in=ids)
        .order_by("pk")
        .values_list(*DECISION_STATE_FIELDS)
    }


def batch_write(
    *,
    events: Sequence[tuple[Any, ...]],
    executions: Sequence[ExecutionState],
    transitions: Sequence[tuple[Any, ...]],
    followed: Followed,
    now: datetime,
) -> None:
    raw = EVENT_COLUMNS.index("raw_event")
    bulk_insert_rows(
        OrderEvent,
        EVENT_COLUMNS,
        [(*row[:raw], JsonText(row[raw]), *row[raw + 1 :]) for row in events],
    )
    bulk_update_rows(
        Execution,
        EXECUTION_WRITE_COLUMNS,
        [
            (
                e.id,
                e.status,
                e.filled_qty,
                e.avg_fill_price,
                e.raw_order,
                e.last_event_ts,
                e.last_seq,
                now,
                now,
            )
            for e in executions
        ],
    )
    bulk_insert_rows(ExecutionTransition, TRANSITION_COLUMNS, transitions)
    bulk_update_rows(
        TradeDecision,
        ("status", "executed_at", "reject_reason", "updated_at"),
        [(d.id, d.status, d.executed_at, d.reject_reason, now) for d in followed.decisions],
    )
    bulk_insert_rows(TradeDecisionTransition, DECISION_TRANSITION_COLUMNS, followed.transitions)
    bulk_upsert_rows(
        ExecutionTcaMetric,
        TCA_COLUMNS,
        followed.tca,
        unique_columns=["execution_id"],
        update_columns=TCA_COLUMNS[1:],
    )
