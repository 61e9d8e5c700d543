"""Set-based ingest statements for Postgres, the consumer's database in production.

A batch costs three round trips whatever its size (four above EVENTS_COPY_MIN events), and no
model instance:
1. `batch_read`: two statements sent together (psycopg pipeline mode): the batch's events already
   stored (one index probe per fingerprint, one range scan per partition for the log positions),
   and the executions its events name with their decisions, locked in primary-key order
   (executions first, then decisions, as reconciliation does);
2. `batch_write`: ONE statement whose data-modifying CTEs insert the events, update the
   executions, append their transitions, move the decisions, append theirs and upsert TCA, from
   JSON array parameters (serialised by orjson in C, unpacked by `jsonb_array_elements`). A large
   batch sends its events by binary COPY first instead: cheaper per row for both sides, one more
   round trip;
3. the commit.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from django.db import DataError, connection
from psycopg.abc import Buffer
from psycopg.adapt import Dumper
from psycopg.pq import Format

from orderfeed.ingest.rules import (
    EVENT_COLUMNS,
    BatchState,
    DecisionState,
    ExecutionState,
    Followed,
    Pending,
)
from torghut_site.db import pg_array_literal

# One index probe per fingerprint whatever the table's size (a hashed `= ANY` scans a small
# table whole), one range scan per partition for the log positions.
STORED_MATCHES_SQL = """
SELECT e.event_fingerprint, e.source_topic, e.source_partition, e.source_offset
  FROM unnest(%s::text[]) AS f(fp)
 CROSS JOIN LATERAL (
       SELECT * FROM orderfeed_orderevent e WHERE e.event_fingerprint = f.fp LIMIT 1
 ) AS e
UNION ALL
SELECT e.event_fingerprint, e.source_topic, e.source_partition, e.source_offset
  FROM unnest(%s::text[], %s::int[], %s::bigint[], %s::bigint[]) AS r(topic, part, lo, hi)
  JOIN orderfeed_orderevent e
    ON e.source_topic = r.topic AND e.source_partition = r.part
   AND e.source_offset BETWEEN r.lo AND r.hi
"""

# Per key, the lane's unique (account_label, broker_order_id) index, and the client order id index
# only when the broker order id found nothing (COALESCE evaluates its second subquery lazily).
# `= ANY(ARRAY(...))` keeps the locking scans on the primary keys whatever the table sizes.
EXECUTIONS_LOCK_SQL = """
WITH ids AS (
    SELECT COALESCE(
               (SELECT x.id FROM trading_execution x
                 WHERE x.account_label = k.acct AND x.broker_order_id = k.oid AND k.oid <> ''),
               (SELECT x.id FROM trading_execution x
                 WHERE x.account_label = k.acct AND x.client_order_id = k.cid AND k.cid <> '')
           ) AS id
      FROM unnest(%s::text[], %s::text[], %s::text[]) AS k(acct, oid, cid)
), lx AS MATERIALIZED (
    SELECT x.id, x.decision_id, x.account_label, x.broker_order_id, x.client_order_id, x.symbol,
           x.side, x.submitted_qty, x.filled_qty, x.avg_fill_price, x.status,
           x.order_feed_last_event_ts, x.order_feed_last_seq
      FROM trading_execution x
     WHERE x.id = ANY(ARRAY(SELECT id FROM ids))  -- a NULL (no match) matches no row
     ORDER BY x.id
       FOR UPDATE OF x
), ld AS MATERIALIZED (
    SELECT d.id, d.strategy_id, d.status, d.price, d.executed_at, d.reject_reason
      FROM trading_tradedecision d
     WHERE d.id = ANY(ARRAY(SELECT decision_id FROM lx))
     ORDER BY d.id
       FOR UPDATE OF d
)
SELECT lx.*, ld.id, ld.strategy_id, ld.status, ld.price, ld.executed_at, ld.reject_reason
  FROM lx LEFT JOIN ld ON ld.id = lx.decision_id
"""

_EVENTS_CTE = f"""
events AS (
    INSERT INTO orderfeed_orderevent ({", ".join(EVENT_COLUMNS)})
    SELECT r->>0, r->>1, (r->>2)::int, (r->>3)::bigint, r->>4, (r->>5)::bigint,
           (r->>6)::timestamptz, r->>7, r->>8, r->>9, r->>10, r->>11, (r->>12)::numeric,
           (r->>13)::numeric, (r->>14)::numeric, r->15, (r->>16)::bigint, (r->>17)::bigint,
           r->>18, (r->>19)::timestamptz, (r->>20)::timestamptz
      FROM jsonb_array_elements(%(events)s::jsonb) AS r
),"""  # noqa: S608 - the model's column names

_CHANGES_CTES = """
executions AS (
    UPDATE trading_execution t
       SET status = r->>1,
           filled_qty = (r->>2)::numeric,
           avg_fill_price = (r->>3)::numeric,
           raw_order = r->4,
           order_feed_last_event_ts = (r->>5)::timestamptz,
           order_feed_last_seq = (r->>6)::bigint,
           last_update_at = %(now)s,
           updated_at = %(now)s
      FROM jsonb_array_elements(%(executions)s::jsonb) AS r
     WHERE t.id = (r->>0)::bigint
), execution_transitions AS (
    INSERT INTO trading_executiontransition
           (execution_id, from_status, to_status, filled_qty, source, at)
    SELECT (r->>0)::bigint, r->>1, r->>2, (r->>3)::numeric, 'order_feed', %(now)s
      FROM jsonb_array_elements(%(transitions)s::jsonb) AS r
), decisions AS (
    UPDATE trading_tradedecision t
       SET status = r->>1,
           executed_at = (r->>2)::timestamptz,
           reject_reason = r->>3,
           updated_at = %(now)s
      FROM jsonb_array_elements(%(decisions)s::jsonb) AS r
     WHERE t.id = (r->>0)::bigint
), decision_transitions AS (
    INSERT INTO trading_tradedecisiontransition (decision_id, from_status, to_status, reason, at)
    SELECT (r->>0)::bigint, r->>1, r->>2, 'order_feed', %(now)s
      FROM jsonb_array_elements(%(decision_transitions)s::jsonb) AS r
), tca AS (
    INSERT INTO trading_executiontcametric
           (execution_id, decision_id, strategy_id, account_label, symbol, side, arrival_price,
            avg_fill_price, filled_qty, signed_qty, slippage_bps, shortfall_notional,
            computed_at)
    SELECT (r->>0)::bigint, (r->>1)::bigint, (r->>2)::bigint, r->>3, r->>4, r->>5,
           (r->>6)::numeric, (r->>7)::numeric, (r->>8)::numeric, (r->>9)::numeric,
           (r->>10)::numeric, (r->>11)::numeric, %(now)s
      FROM jsonb_array_elements(%(tca)s::jsonb) AS r
        ON CONFLICT (execution_id) DO UPDATE
       SET decision_id = EXCLUDED.decision_id,
           strategy_id = EXCLUDED.strategy_id,
           account_label = EXCLUDED.account_label,
           symbol = EXCLUDED.symbol,
           side = EXCLUDED.side,
           arrival_price = EXCLUDED.arrival_price,
           avg_fill_price = EXCLUDED.avg_fill_price,
           filled_qty = EXCLUDED.filled_qty,
           signed_qty = EXCLUDED.signed_qty,
           slippage_bps = EXCLUDED.slippage_bps,
           shortfall_notional = EXCLUDED.shortfall_notional,
           computed_at = EXCLUDED.computed_at
)
SELECT 1
"""
_RAW = EVENT_COLUMNS.index("raw_event")
# events in the statement (small batches: one round trip less) or by COPY before it (large ones)
WRITE_WITH_EVENTS_SQL = "WITH" + _EVENTS_CTE + _CHANGES_CTES
WRITE_SQL = "WITH" + _CHANGES_CTES
# From this many events a batch COPYs them: the JSON path costs Postgres ~4 µs more per event
# (bench/profile_orderfeed.py), the COPY one round trip more.
EVENTS_COPY_MIN = 100


def batch_read(candidates: Sequence[Pending]) -> BatchState:
    """What is already stored of these events, and their executions and decisions, locked:
    two statements in one round trip."""
    ranges: dict[tuple[str, int], list[int]] = defaultdict(lambda: [2**63 - 1, -1])
    keys: set[tuple[str, str, str]] = set()
    for p in candidates:
        m, u = p.message, p.update
        bounds = ranges[(m.topic, m.partition)]
        if m.offset < bounds[0]:
            bounds[0] = m.offset
        if m.offset > bounds[1]:
            bounds[1] = m.offset
        keys.add((u.account_label, u.broker_order_id, u.client_order_id))
    partitions = sorted(ranges)
    stored_params = [
        # sha256 hex digests: nothing to quote
        "{" + ",".join(p.update.fingerprint for p in candidates) + "}",
        [t for t, _ in partitions],
        [p for _, p in partitions],
        [ranges[k][0] for k in partitions],
        [ranges[k][1] for k in partitions],
    ]
    lock_params = [pg_array_literal([k[i] for k in keys]) for i in range(3)]
    with _cursor() as stored, _cursor() as locked:
        with stored.connection.pipeline():
            stored.execute(STORED_MATCHES_SQL, stored_params)
            locked.execute(EXECUTIONS_LOCK_SQL, lock_params)
        stored_rows: list[tuple[str, str, int, int]] = stored.fetchall()
        locked_rows = locked.fetchall()
    executions = []
    decisions: dict[int, DecisionState] = {}
    for row in locked_rows:
        executions.append(ExecutionState(*row[:13]))
        if row[13] is not None:
            decisions[row[13]] = DecisionState(*row[13:19])
    return BatchState(stored_rows, executions, decisions)


# binary COPY: no text formatting of datetimes and numerics on either side
EVENT_COPY_TYPES = (
    "text",  # event_fingerprint
    "text",  # source_topic
    "int4",  # source_partition
    "int8",  # source_offset
    "text",  # account_label
    "int8",  # feed_seq
    "timestamptz",  # event_ts
    "text",  # symbol
    "text",  # broker_order_id
    "text",  # client_order_id
    "text",  # event_type
    "text",  # status
    "numeric",  # qty
    "numeric",  # filled_qty
    "numeric",  # avg_fill_price
    "jsonb",  # raw_event: the record's JSON text, sent as is
    "int8",  # execution_id
    "int8",  # decision_id
    "text",  # outcome
    "timestamptz",  # received_at
    "timestamptz",  # produced_at
)
EVENTS_COPY_SQL = (
    f"COPY orderfeed_orderevent ({', '.join(EVENT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
)


def events_copy(rows: Sequence[tuple[Any, ...]]) -> None:
    """The new events (EVENT_COLUMNS tuples) by one binary COPY."""
    with _cursor() as cursor:
        cursor.adapters.register_dumper(None, _JsonTextBinaryDumper)
        try:
            with cursor.copy(EVENTS_COPY_SQL) as copy:
                copy.set_types(EVENT_COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
        except OverflowError as exc:  # an integer beyond int8, refused here instead of by Postgres
            raise DataError(f"value out of range for a bigint column: {exc}") from exc


class _JsonTextBinaryDumper(Dumper):
    """jsonb in binary COPY from JSON that is already text (the record as it arrived): the
    format's version byte, then the text. psycopg's own jsonb dumper would serialise it again."""

    format = Format.BINARY
    oid = psycopg.postgres.types["jsonb"].oid

    def dump(self, obj: str) -> Buffer:
        return b"\x01" + obj.encode()


@contextmanager
def _cursor() -> Iterator[psycopg.Cursor[Any]]:
    """A psycopg cursor with server-side binding on Django's connection: the large JSON
    parameters travel as parameters, not quoted into the SQL text (Django's cursors bind on the
    client). Errors are translated to django.db errors, as Django's own cursors do."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def batch_write(
    *,
    events: Sequence[tuple[Any, ...]],
    executions: Sequence[ExecutionState],
    transitions: Sequence[tuple[Any, ...]],
    followed: Followed,
    now: datetime,
) -> None:
    """The events, executions, their transitions, decisions, theirs and TCA rows: one statement
    (a large batch COPYs its events first)."""
    params: dict[str, Any] = {
        "now": now,
        "executions": _json(
            [
                (
                    e.id,
                    e.status,
                    e.filled_qty,
                    e.avg_fill_price,
                    e.raw_order,
                    e.last_event_ts,
                    e.last_seq,
                )
                for e in executions
            ]
        ),
        "transitions": _json([t[:4] for t in transitions]),
        "decisions": _json(
            [(d.id, d.status, d.executed_at, d.reject_reason) for d in followed.decisions]
        ),
        "decision_transitions": _json([t[:3] for t in followed.transitions]),
        "tca": _json([t[:12] for t in followed.tca]),
    }
    sql = WRITE_SQL
    if len(events) < EVENTS_COPY_MIN:
        try:
            # the raw record is JSON already: embedded as it arrived
            params["events"] = orjson.dumps(
                [(*row[:_RAW], orjson.Fragment(row[_RAW]), *row[_RAW + 1 :]) for row in events],
                default=_decimal_text,
            ).decode()
            sql = WRITE_WITH_EVENTS_SQL
        except orjson.JSONEncodeError:  # an integer beyond 64 bits: COPY takes it as it is
            pass
    if sql is WRITE_SQL:
        events_copy(events)
    with _cursor() as cursor:
        cursor.execute(sql, params)


def _json(rows: list[tuple[Any, ...]]) -> str:
    """Rows as a JSON array of arrays: Decimals as strings (exact), datetimes ISO-8601 with
    offset. orjson in C; the standard library for what orjson refuses (ints beyond 64 bits)."""
    try:
        return orjson.dumps(rows, default=_decimal_text).decode()
    except orjson.JSONEncodeError:
        return json.dumps(rows, default=_json_default)


def _decimal_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return _decimal_text(value)
