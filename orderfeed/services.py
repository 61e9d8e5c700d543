"""Order-feed ingestion: trade updates → stored events → executions and decisions
(docs/compatibility.md#order-feed).

`order_events_ingest` takes one polled batch and, in ONE transaction:
1. parses every message (invalid JSON / no order identity → dead letter, counted `missing_fields`);
2. drops duplicates — same content (`event_fingerprint`) or same log position
   (`topic, partition, offset`), within the batch or already stored — counted, never an error;
   a stored position that comes back with other content (a reused offset) is dead-lettered
   `offset_reused` instead;
3. links each new event to its execution (broker order id, else client order id, per lane),
   else to our decision by client order id (an execution is then recorded from the event: the
   feed was faster than the submitting process's commit), else flags it `unknown_order`;
4. applies the linked events in log order, one at a time, through the order-state rule
   (`trading.orderstate`, as submit and reconciliation do): an event whose `seq` or event time is
   older than what the execution already applied is stored, not applied;
5. writes events, executions, transitions, decisions (status followed, `executed_at` on the
   first fill; one decision transition per batch) and TCA rows.
The rules (steps 3–5) run on plain values (`orderfeed.ingest.rules`); reading and writing is
set-based — a handful of statements per batch, none per event — through one of two stores:
`orderfeed.ingest.postgres` (the consumer's database: one pipelined read, one CTE statement that
writes every change) or `orderfeed.ingest.portable` (ORM and bulk helpers, for the embedded SQLite
default).
A redelivered batch finds all its events stored and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from orderfeed import metrics
from orderfeed.ingest import portable, postgres
from orderfeed.ingest.rules import (
    UNKNOWN_ORDER,
    BatchState,
    ExecutionState,
    Followed,
    Pending,
    decisions_follow,
    event_row,
    events_apply,
    link,
)
from orderfeed.normalize import InvalidTradeUpdate, TradeUpdate, parse_trade_update
from orderfeed.selectors import order_events_next_offsets
from torghut_site.faults import fault_point
from torghut_site.kafka.messages import DeadLetter, RawMessage
from trading.lanes import UnknownLaneError, lane_config
from trading.models import Execution, ExecutionTransition, Incident, TradeDecision
from trading.notifications import notify_incidents

logger = logging.getLogger(__name__)


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
    offsets_reused: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def as_json(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, int)}


@dataclass(frozen=True)
class IngestStore:
    """How ingest reads and writes one database (the rules in between are shared)."""

    name: str
    read: Callable[[Sequence[Pending]], BatchState]
    write: Callable[..., None]


POSTGRES_STORE = IngestStore("postgres", postgres.batch_read, postgres.batch_write)
PORTABLE_STORE = IngestStore("portable", portable.batch_read, portable.batch_write)


def ingest_store() -> IngestStore:
    return POSTGRES_STORE if connection.vendor == "postgresql" else PORTABLE_STORE


def order_events_ingest(
    messages: Sequence[RawMessage],
    *,
    default_account: str | None = None,
    store: IngestStore | None = None,
    parsed: ParsedBatch | None = None,
) -> IngestResult:
    """Store and apply one batch of trade updates; safe to call again with the same batch.
    `parsed`: the batch's `batch_parse` when it was done already (by the consumer's helper
    thread, while the previous batch was in the database)."""
    parsed = parsed or batch_parse(messages, default_account=default_account)
    store = store or ingest_store()
    result = IngestResult(
        messages=len(messages),
        duplicates=parsed.duplicates,
        missing_fields=len(parsed.dead_letters),
        dead_letters=list(parsed.dead_letters),
    )
    candidates = [Pending(message, update) for message, update in parsed.unique]
    if candidates:
        with transaction.atomic():
            state = store.read(candidates)
            fresh = _drop_stored(candidates, state, result)
            if fresh:
                _store(fresh, state, store, result)
                fault_point("orderfeed_before_commit")
    _count(result)
    return result


# -- 1. parsing and duplicates ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ParsedBatch:
    """A batch parsed, before any database read: the first message of each fingerprint and log
    position (in polled order) with its update, the refused messages, the in-batch duplicates.
    Read-only: a retried batch reuses it."""

    unique: tuple[tuple[RawMessage, TradeUpdate], ...]
    dead_letters: tuple[DeadLetter, ...]
    duplicates: int


def batch_parse(
    messages: Sequence[RawMessage], *, default_account: str | None = None
) -> ParsedBatch:
    """Parse a batch (CPU only: no database, no metrics; safe on another thread)."""
    default_account = default_account or settings.TRADING_ACCOUNT_LABEL
    seen_fp: set[str] = set()
    seen_pos: set[tuple[str, int, int]] = set()
    unique: list[tuple[RawMessage, TradeUpdate]] = []
    letters: list[DeadLetter] = []
    duplicates = 0
    for message in messages:
        try:
            update = parse_trade_update(message.value, default_account=default_account)
        except InvalidTradeUpdate as exc:
            letters.append(DeadLetter(message, exc.reason, str(exc)))
            continue
        pos = (message.topic, message.partition, message.offset)
        if update.fingerprint in seen_fp or pos in seen_pos:
            duplicates += 1
            continue
        seen_fp.add(update.fingerprint)
        seen_pos.add(pos)
        unique.append((message, update))
    return ParsedBatch(tuple(unique), tuple(letters), duplicates)


def _drop_stored(
    candidates: list[Pending], state: BatchState, result: IngestResult
) -> list[Pending]:
    """Drop what is stored already: the same content (fingerprint) is a duplicate, wherever it
    sits in the log. A stored log position with OTHER content is not a duplicate: the log reused
    the offset (a topic deleted and recreated, a broker that lost acknowledged records). That
    record is dead-lettered as `offset_reused` — kept and visible, never silently dropped, and
    never applied over the position's stored event."""
    if not state.stored:
        return candidates
    stored_fp: set[str] = set()
    stored_pos: set[tuple[str, int, int]] = set()
    for fingerprint, topic, partition, offset in state.stored:
        stored_fp.add(fingerprint)
        stored_pos.add((topic, partition, offset))
    fresh = []
    for p in candidates:
        m = p.message
        if p.update.fingerprint in stored_fp:
            result.duplicates += 1
        elif (m.topic, m.partition, m.offset) in stored_pos:
            result.offsets_reused += 1
            result.dead_letters.append(
                DeadLetter.offset_reused(m, "a stored event with other content")
            )
            logger.error(
                "order feed: a stored log position came back with other content",
                extra={"topic": m.topic, "partition": m.partition, "offset": m.offset},
            )
        else:
            fresh.append(p)
    return fresh


# -- 2. link, apply, write ----------------------------------------------------------------------
def _store(
    fresh: list[Pending], state: BatchState, store: IngestStore, result: IngestResult
) -> None:
    decisions = state.decisions
    unlinked = link(fresh, state.executions)
    if unlinked:
        _link_decisions(fresh, unlinked)
        _adopt_from_feed(fresh)
        missing = {
            p.execution.decision_id
            for p in fresh
            if p.execution is not None and p.execution.decision_id
        } - decisions.keys()
        if missing:  # executions recorded from the feed just now
            decisions.update(portable.decisions_lock(missing))
    now = timezone.now()
    applied = events_apply(fresh, decisions, now=now)
    result.applied = applied.applied
    result.out_of_order = applied.out_of_order
    result.awaiting_execution = applied.awaiting_execution
    result.unknown_orders = applied.unknown_orders
    followed: Followed = decisions_follow(applied, decisions, now=now)
    store.write(
        events=[event_row(p, now) for p in fresh],
        executions=applied.executions,
        transitions=applied.transitions,
        followed=followed,
        now=now,
    )
    result.persisted = len(fresh)
    result.executions_changed = len(applied.executions)
    result.decisions_changed = len(followed.decisions)
    if applied.unknown_orders:
        _record_unknown_orders([p for p in fresh if p.outcome == UNKNOWN_ORDER])


def _link_decisions(pending: list[Pending], unlinked: list[tuple[str, str]]) -> None:
    """Events without an execution: our decision, by client order id in the lane?"""
    by_account: dict[str, set[str]] = {}
    for account, client_order_id in unlinked:
        by_account.setdefault(account, set()).add(client_order_id)
    query = Q(pk__in=[])
    for account, ids in by_account.items():
        query |= Q(account_label=account, client_order_id__in=ids)
    decisions = {
        (account, client): pk
        for pk, account, client in TradeDecision.objects.filter(query).values_list(
            "pk", "account_label", "client_order_id"
        )
    }
    for p in pending:
        if p.execution is None:
            p.decision_id = decisions.get((p.update.account_label, p.update.client_order_id))


def _adopt_from_feed(pending: list[Pending]) -> None:
    """Our decision's order, reported before our own submit committed: record its execution."""
    created: dict[tuple[str, str], ExecutionState] = {}
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


def _execution_from_update(update: TradeUpdate, decision_id: int) -> ExecutionState | None:
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
    return ExecutionState(*(getattr(execution, name) for name in portable.EXECUTION_STATE_FIELDS))


# -- 3. rare paths ------------------------------------------------------------------------------
def _record_unknown_orders(pending: Iterable[Pending]) -> None:
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
        known = set(
            Incident.objects.filter(incident_key__in=list(incidents)).values_list(
                "incident_key", flat=True
            )
        )
        Incident.objects.bulk_create(list(incidents.values()), ignore_conflicts=True)
        # each new incident is posted once (a concurrent batch's post of it is the same event id)
        notify_incidents(incident_keys=sorted(set(incidents) - known))


def _count(result: IngestResult) -> None:
    metrics.EVENTS_PERSISTED.inc(result.persisted)
    metrics.DUPLICATES.inc(result.duplicates)
    metrics.OUT_OF_ORDER.inc(result.out_of_order)
    metrics.MISSING_FIELDS.inc(result.missing_fields)
    metrics.APPLY_UPDATES.inc(result.applied)
    metrics.UNKNOWN_ORDERS.inc(result.unknown_orders)


class OrderFeedHandler:
    """The order feed's batch handler for `torghut_site.kafka.consumer.BatchConsumer`: parsing
    is its prepare step (`torghut_site.kafka.messages.PreparingHandler`), so the consumer parses
    the next batch while this one is in the database; its stored events say where a partition
    without a committed offset starts (`StartingHandler`)."""

    def __init__(self, *, default_account: str | None = None) -> None:
        self.default_account = default_account
        self.last_result: IngestResult | None = None

    def prepare_batch(self, messages: Sequence[RawMessage]) -> ParsedBatch:
        return batch_parse(messages, default_account=self.default_account)

    def handle_prepared(
        self, messages: Sequence[RawMessage], prepared: ParsedBatch
    ) -> list[DeadLetter]:
        result = order_events_ingest(
            messages, default_account=self.default_account, parsed=prepared
        )
        self.last_result = result
        return result.dead_letters

    def handle_batch(self, messages: Sequence[RawMessage]) -> list[DeadLetter]:
        return self.handle_prepared(messages, self.prepare_batch(messages))

    def start_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """`StartingHandler`: a partition the group has no committed offset for starts after
        the newest event stored from it (every record before was applied)."""
        return order_events_next_offsets(partitions=partitions)
