"""Order-feed ingestion: trade updates → stored events → executions and decisions (inventory §7).

`order_events_ingest` takes one polled batch and, in ONE transaction:
1. parses every message (invalid JSON / no order identity → dead letter, counted `missing_fields`);
2. drops duplicates — same content (`event_fingerprint`) or same log position
   (`topic, partition, offset`), within the batch or already stored — counted, never an error;
3. links each new event to its execution (broker order id, else client order id, per lane),
   else to our decision by client order id (an execution is then recorded from the event: the
   feed was faster than the submitting process's commit), else flags it `unknown_order`;
4. applies the linked events in log order, with the out-of-order rule: an event whose `seq` or
   event time is older than what the execution already applied is stored, not applied;
5. bulk-writes events, executions, transitions, decisions (status copied, `executed_at` on the
   first fill) and TCA rows.
Everything is set-based (a handful of statements per batch, not per event), so ingest is not
capped by per-row commits. A redelivered batch finds all its events stored and changes nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from orderfeed import metrics
from orderfeed.models import EventOutcome, OrderEvent
from orderfeed.normalize import InvalidTradeUpdate, TradeUpdate, parse_trade_update
from torghut_site.db import (
    JsonText,
    bulk_insert,
    bulk_insert_rows,
    bulk_update_fields,
    pg_array_literal,
)
from torghut_site.faults import fault_point
from torghut_site.kafka import DeadLetter, RawMessage
from trading.lanes import UnknownLaneError, lane_config
from trading.models import (
    Execution,
    ExecutionTransition,
    Incident,
    TradeDecision,
    TradeDecisionTransition,
)
from trading.models.decisions import DecisionStatus
from trading.services.execution import tca_metric_for, tca_upsert_many
from trading.statemachine import ORDER_TO_DECISION, decision_can_move, execution_may_advance

logger = logging.getLogger(__name__)

# what linking, applying and TCA read (the rest of the row is not loaded)
EXECUTION_LINK_FIELDS = (
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
EXECUTION_FEED_FIELDS = [
    "status",
    "filled_qty",
    "avg_fill_price",
    "raw_order",
    "last_update_at",
    "order_feed_last_event_ts",
    "order_feed_last_seq",
    "updated_at",
]


@dataclass
class IngestResult:
    messages: int = 0
    persisted: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    missing_fields: int = 0
    applied: int = 0
    unknown_orders: int = 0
    awaiting_execution: int = 0
    executions_changed: int = 0
    decisions_changed: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def as_json(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, int)}


@dataclass
class _Pending:
    message: RawMessage
    update: TradeUpdate
    execution: Execution | None = None
    decision_id: int | None = None
    outcome: str = EventOutcome.UNCHANGED


def order_events_ingest(
    messages: Sequence[RawMessage], *, default_account: str | None = None
) -> IngestResult:
    """Store and apply one batch of trade updates; safe to call again with the same batch."""
    default_account = default_account or settings.TRADING_ACCOUNT_LABEL
    result = IngestResult(messages=len(messages))
    parsed: list[_Pending] = []
    for message in messages:
        try:
            update = parse_trade_update(message.value, default_account=default_account)
        except InvalidTradeUpdate as exc:
            result.missing_fields += 1
            result.dead_letters.append(DeadLetter(message, exc.reason, str(exc)))
            continue
        parsed.append(_Pending(message, update))

    with transaction.atomic():
        fresh = _drop_duplicates(parsed, result)
        if fresh:
            _link(fresh)
            _adopt_from_feed(fresh)
            changed = _apply(fresh, result)
            now = timezone.now()
            bulk_insert_rows(OrderEvent, EVENT_COLUMNS, [_event_row(p, now) for p in fresh])
            result.persisted = len(fresh)
            _write_executions(changed)
            result.executions_changed = len(changed)
            result.decisions_changed = _follow_decisions(changed, now)
            _record_unknown_orders([p for p in fresh if p.outcome == EventOutcome.UNKNOWN_ORDER])
            fault_point("orderfeed_before_commit")
    _count(result)
    return result


# -- 1. duplicates ------------------------------------------------------------------------------
def _drop_duplicates(parsed: list[_Pending], result: IngestResult) -> list[_Pending]:
    seen_fp: set[str] = set()
    seen_pos: set[tuple[str, int, int]] = set()
    unique: list[_Pending] = []
    for p in parsed:
        pos = (p.message.topic, p.message.partition, p.message.offset)
        if p.update.fingerprint in seen_fp or pos in seen_pos:
            result.duplicates += 1
            continue
        seen_fp.add(p.update.fingerprint)
        seen_pos.add(pos)
        unique.append(p)
    if not unique:
        return []
    stored_fp: set[str] = set()
    stored_pos: set[tuple[str, int, int]] = set()
    for fingerprint, topic, partition, offset in _stored_matches(seen_fp, seen_pos):
        stored_fp.add(fingerprint)
        stored_pos.add((topic, partition, offset))
    fresh = []
    for p in unique:
        pos = (p.message.topic, p.message.partition, p.message.offset)
        if p.update.fingerprint in stored_fp or pos in stored_pos:
            result.duplicates += 1
        else:
            fresh.append(p)
    return fresh


def _stored_matches(
    fingerprints: set[str], positions: set[tuple[str, int, int]]
) -> list[tuple[str, str, int, int]]:
    """Stored events with one of these fingerprints or log positions (fingerprint, topic,
    partition, offset); rows come back only for duplicates.

    Postgres: ONE statement, each key set sent as one array literal (both unique indexes
    probed). Elsewhere two ORM queries.
    """
    by_partition: dict[tuple[str, int], list[int]] = defaultdict(list)
    for topic, partition, offset in positions:
        by_partition[(topic, partition)].append(offset)
    columns = ("event_fingerprint", "source_topic", "source_partition", "source_offset")
    if connection.vendor != "postgresql":
        position_q = Q()
        for (topic, partition), offsets in by_partition.items():
            position_q |= Q(
                source_topic=topic, source_partition=partition, source_offset__in=offsets
            )
        return list(
            OrderEvent.objects.filter(Q(event_fingerprint__in=fingerprints) | position_q)
            .order_by()
            .values_list(*columns)
        )
    where = ["event_fingerprint = ANY(%s::text[])"]
    params: list[Any] = [pg_array_literal(fingerprints)]
    for (topic, partition), offsets in sorted(by_partition.items()):
        where.append(
            "(source_topic = %s AND source_partition = %s AND source_offset = ANY(%s::bigint[]))"
        )
        params += [topic, partition, pg_array_literal(offsets)]
    table = connection.ops.quote_name(OrderEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(columns)} FROM {table} WHERE {' OR '.join(where)}",  # noqa: S608 - fixed names; values are parameters
            params,
        )
        rows: list[tuple[str, str, int, int]] = cursor.fetchall()
        return rows


# -- 2. linking ---------------------------------------------------------------------------------
def _link(pending: list[_Pending]) -> None:
    order_ids: dict[str, set[str]] = defaultdict(set)
    client_ids: dict[str, set[str]] = defaultdict(set)
    for p in pending:
        if p.update.broker_order_id:
            order_ids[p.update.account_label].add(p.update.broker_order_id)
        if p.update.client_order_id:
            client_ids[p.update.account_label].add(p.update.client_order_id)
    by_order: dict[tuple[str, str], Execution] = {}
    by_client: dict[tuple[str, str], Execution] = {}
    for execution in _lock_executions(order_ids, client_ids):
        by_order[(execution.account_label, execution.broker_order_id)] = execution
        by_client[(execution.account_label, execution.client_order_id)] = execution
    unlinked_clients: dict[str, set[str]] = defaultdict(set)
    for p in pending:
        u = p.update
        p.execution = by_order.get((u.account_label, u.broker_order_id)) or by_client.get(
            (u.account_label, u.client_order_id)
        )
        if p.execution is not None:
            p.decision_id = p.execution.decision_id
        elif u.client_order_id:
            unlinked_clients[u.account_label].add(u.client_order_id)
    if not unlinked_clients:
        return
    decision_q = Q()
    for account, ids in unlinked_clients.items():
        decision_q |= Q(account_label=account, client_order_id__in=ids)
    decisions = {
        (account, client): pk
        for pk, account, client in TradeDecision.objects.filter(decision_q).values_list(
            "pk", "account_label", "client_order_id"
        )
    }
    for p in pending:
        if p.execution is None:
            p.decision_id = decisions.get((p.update.account_label, p.update.client_order_id))


def _lock_executions(
    order_ids: dict[str, set[str]], client_ids: dict[str, set[str]]
) -> Iterable[Execution]:
    """The executions with one of these broker / client order ids per lane, locked in
    primary-key order (as reconciliation does) so concurrent writers never deadlock.

    Postgres: one statement with one array literal per id set (the lane's two unique indexes);
    elsewhere the same query through the ORM.
    """
    accounts = sorted(set(order_ids) | set(client_ids))
    if connection.vendor != "postgresql":
        query = Q()
        for account in accounts:
            query |= Q(account_label=account) & (
                Q(broker_order_id__in=order_ids[account])
                | Q(client_order_id__in=client_ids[account])
            )
        return (
            Execution.objects.select_for_update(of=("self",))
            .filter(query)
            .only(*EXECUTION_LINK_FIELDS)
            .order_by("pk")
        )
    where = []
    params: list[Any] = []
    for account in accounts:
        where.append(
            "(account_label = %s AND (broker_order_id = ANY(%s::text[]) "
            "OR client_order_id = ANY(%s::text[])))"
        )
        params += [
            account,
            pg_array_literal(order_ids.get(account, ())),
            pg_array_literal(client_ids.get(account, ())),
        ]
    table = connection.ops.quote_name(Execution._meta.db_table)
    return Execution.objects.raw(
        f"SELECT {', '.join(EXECUTION_LINK_FIELDS)} FROM {table} "  # noqa: S608 - fixed names; values are parameters
        f"WHERE {' OR '.join(where)} ORDER BY id FOR UPDATE",
        params,
    )


def _adopt_from_feed(pending: list[_Pending]) -> None:
    """Our decision's order, reported before our own submit committed: record its execution."""
    created: dict[tuple[str, str], Execution] = {}
    for p in pending:
        u = p.update
        if p.execution is not None or p.decision_id is None:
            continue
        key = (u.account_label, u.client_order_id)
        if key not in created:
            execution = _execution_from_update(u, p.decision_id)
            if execution is None:
                continue
            created[key] = execution
        p.execution = created[key]


def _execution_from_update(update: TradeUpdate, decision_id: int) -> Execution | None:
    order = update.order
    side = str(order.get("side") or "").lower()
    qty = update.qty
    if not update.broker_order_id or side not in ("buy", "sell") or not qty or qty <= 0:
        return None  # not enough to describe the order; reconciliation will fetch it
    try:
        broker = lane_config(update.account_label).broker
    except UnknownLaneError:
        broker = "unknown"
    now = timezone.now()
    try:
        with transaction.atomic():
            execution = Execution.objects.create(
                decision_id=decision_id,
                account_label=update.account_label,
                broker=broker,
                broker_order_id=update.broker_order_id,
                client_order_id=update.client_order_id,
                symbol=update.symbol,
                side=side,
                order_type=str(order.get("order_type") or order.get("type") or "market")[:16],
                time_in_force=str(order.get("time_in_force") or "day")[:8],
                submitted_qty=qty,
                status="pending_new",
                adopted=True,
                raw_order=order,
                submitted_at=update.event_ts or now,
                last_update_at=now,
            )
            ExecutionTransition.objects.create(
                execution=execution, from_status="", to_status="pending_new", source="order_feed"
            )
    except IntegrityError:
        execution = Execution.objects.select_for_update(of=("self",)).get(
            account_label=update.account_label, client_order_id=update.client_order_id
        )
    return execution


# -- 3. applying --------------------------------------------------------------------------------
def _apply(pending: list[_Pending], result: IngestResult) -> dict[int, Execution]:
    """Apply events in log order; returns the executions that need writing back."""
    changed: dict[int, Execution] = {}
    transitions: list[tuple[Any, ...]] = []
    now = timezone.now()
    for p in sorted(pending, key=_log_position):
        execution = p.execution
        if execution is None:
            if p.decision_id is not None:
                p.outcome = EventOutcome.AWAITING_EXECUTION
                result.awaiting_execution += 1
            else:
                p.outcome = EventOutcome.UNKNOWN_ORDER
                result.unknown_orders += 1
            continue
        u = p.update
        if _older(u, execution):
            p.outcome = EventOutcome.OUT_OF_ORDER
            result.out_of_order += 1
            continue
        from_status = execution.status
        advanced = False
        status = u.applicable_status
        if status is not None and execution_may_advance(execution.status, status):
            execution.status = status
            advanced = True
        if u.filled_qty is not None and u.filled_qty > execution.filled_qty:
            execution.filled_qty = min(u.filled_qty, execution.submitted_qty)
            if u.avg_fill_price is not None:
                execution.avg_fill_price = u.avg_fill_price
            advanced = True
        if u.event_ts is not None:
            execution.order_feed_last_event_ts = u.event_ts
        if u.feed_seq is not None:
            execution.order_feed_last_seq = u.feed_seq
        execution.raw_order = u.order or u.raw
        execution.last_update_at = now
        execution.updated_at = now
        changed[execution.pk] = execution
        if advanced:
            p.outcome = EventOutcome.APPLIED
            result.applied += 1
            transitions.append(
                (
                    execution.pk,
                    from_status,
                    execution.status,
                    execution.filled_qty,
                    "order_feed",
                    now,
                )
            )
    bulk_insert_rows(
        ExecutionTransition,
        ("execution_id", "from_status", "to_status", "filled_qty", "source", "at"),
        transitions,
    )
    return changed


def _log_position(p: _Pending) -> tuple[str, int, int]:
    return (p.message.topic, p.message.partition, p.message.offset)


def _older(update: TradeUpdate, execution: Execution) -> bool:
    last_seq = execution.order_feed_last_seq
    if update.feed_seq is not None and last_seq is not None and update.feed_seq < last_seq:
        return True
    last_ts = execution.order_feed_last_event_ts
    return update.event_ts is not None and last_ts is not None and update.event_ts < last_ts


def _write_executions(changed: dict[int, Execution]) -> None:
    if changed:
        bulk_update_fields(Execution, list(changed.values()), EXECUTION_FEED_FIELDS)


def _follow_decisions(changed: dict[int, Execution], now: datetime) -> int:
    """Copy execution status onto decisions (where their lifecycle allows) and refresh TCA."""
    executions = list(changed.values())
    decision_ids = {e.decision_id for e in executions if e.decision_id is not None}
    decisions = {d.pk: d for d in _lock_decisions(decision_ids)}
    moved: list[TradeDecision] = []
    transitions: list[TradeDecisionTransition] = []
    tca = []
    for execution in executions:
        decision = decisions.get(execution.decision_id) if execution.decision_id else None
        if decision is not None:
            target = ORDER_TO_DECISION.get(execution.status)
            if (
                target is not None
                and target != decision.status
                and decision_can_move(decision.status, target)
            ):
                transitions.append(
                    TradeDecisionTransition(
                        decision=decision,
                        from_status=decision.status,
                        to_status=target,
                        reason="order_feed",
                    )
                )
                decision.status = target
                if target in (DecisionStatus.PARTIALLY_FILLED, DecisionStatus.FILLED):
                    decision.executed_at = decision.executed_at or now
                if target == DecisionStatus.REJECTED and not decision.reject_reason:
                    decision.reject_reason = "broker_rejected"
                decision.updated_at = now
                moved.append(decision)
        if execution.filled_qty > 0:
            tca.append(tca_metric_for(execution=execution, decision=decision))
    if moved:
        bulk_update_fields(
            TradeDecision, moved, ["status", "executed_at", "reject_reason", "updated_at"]
        )
        bulk_insert(TradeDecisionTransition, transitions)
    tca_upsert_many(metrics=tca)
    return len(moved)


DECISION_FOLLOW_FIELDS = ("id", "strategy_id", "status", "price", "executed_at", "reject_reason")


def _lock_decisions(decision_ids: set[int]) -> Iterable[TradeDecision]:
    """These decisions (what following and TCA read), locked in primary-key order."""
    if not decision_ids:
        return []
    if connection.vendor != "postgresql":
        return (
            TradeDecision.objects.select_for_update(of=("self",))
            .filter(pk__in=decision_ids)
            .only(*DECISION_FOLLOW_FIELDS)
            .order_by("pk")
        )
    table = connection.ops.quote_name(TradeDecision._meta.db_table)
    return TradeDecision.objects.raw(
        f"SELECT {', '.join(DECISION_FOLLOW_FIELDS)} FROM {table} "  # noqa: S608 - fixed names; the ids are a parameter
        "WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE",
        [pg_array_literal(decision_ids)],
    )


# -- 4. rows ------------------------------------------------------------------------------------
EVENT_COLUMNS = (
    "event_fingerprint",
    "source_topic",
    "source_partition",
    "source_offset",
    "account_label",
    "feed_seq",
    "event_ts",
    "symbol",
    "broker_order_id",
    "client_order_id",
    "event_type",
    "status",
    "qty",
    "filled_qty",
    "avg_fill_price",
    "raw_event",
    "execution_id",
    "decision_id",
    "outcome",
    "received_at",
    "produced_at",
)


def _event_row(p: _Pending, now: datetime) -> tuple[Any, ...]:
    """One `OrderEvent` as a value tuple in EVENT_COLUMNS order (the raw record stored as is)."""
    u = p.update
    return (
        u.fingerprint,
        p.message.topic,
        p.message.partition,
        p.message.offset,
        u.account_label,
        u.feed_seq,
        u.event_ts,
        u.symbol,
        u.broker_order_id,
        u.client_order_id,
        u.event_type,
        u.status,
        _clamp(u.qty),
        _clamp(u.filled_qty),
        u.avg_fill_price,
        JsonText(u.raw_text),
        p.execution.pk if p.execution is not None else None,
        p.decision_id,
        p.outcome,
        now,
        p.message.produced_at,
    )


def _clamp(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.00000001"))


def _record_unknown_orders(pending: Iterable[_Pending]) -> None:
    """An order at the broker that we never sent: one open incident per order for the operator."""
    incidents: dict[str, Incident] = {}
    for p in pending:
        u = p.update
        key = f"unknown-order:{u.account_label}:{u.broker_order_id or u.client_order_id}"[:80]
        snapshot: dict[str, Any] = {
            "account_label": u.account_label,
            "broker_order_id": u.broker_order_id,
            "client_order_id": u.client_order_id,
            "symbol": u.symbol,
            "status": u.status,
            "first_event": u.event_type,
        }
        incidents.setdefault(
            key,
            Incident(
                incident_key=key, kind="unknown_order", reasons=["unknown_order"], snapshot=snapshot
            ),
        )
        logger.warning("order feed: event for an order we never sent", extra=snapshot)
    if incidents:
        Incident.objects.bulk_create(list(incidents.values()), ignore_conflicts=True)


def _count(result: IngestResult) -> None:
    metrics.EVENTS_PERSISTED.inc(result.persisted)
    metrics.DUPLICATES.inc(result.duplicates)
    metrics.OUT_OF_ORDER.inc(result.out_of_order)
    metrics.MISSING_FIELDS.inc(result.missing_fields)
    metrics.APPLY_UPDATES.inc(result.applied)
    metrics.UNKNOWN_ORDERS.inc(result.unknown_orders)


class OrderFeedHandler:
    """The order feed's batch handler for `torghut_site.kafka.BatchConsumer`."""

    def __init__(self, *, default_account: str | None = None) -> None:
        self.default_account = default_account
        self.last_result: IngestResult | None = None

    def handle_batch(self, messages: Sequence[RawMessage]) -> list[DeadLetter]:
        result = order_events_ingest(messages, default_account=self.default_account)
        self.last_result = result
        return result.dead_letters
