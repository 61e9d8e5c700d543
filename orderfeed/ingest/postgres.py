"""Set-based ingest statements for Postgres, the consumer's database in production.

A batch costs four round trips whatever its size, and no model instance:
1. `stored_matches`: the batch's events already stored (one index probe per fingerprint, one
   range scan per partition for the log positions);
2. `executions_lock`: the executions the fresh events name and their decisions, locked in
   primary-key order (executions first, then decisions, as reconciliation does);
3. `events_copy`: the events, by COPY;
4. `changes_write`: ONE statement whose data-modifying CTEs update the executions, append their
   transitions, move the decisions, append theirs and upsert TCA, from JSON array parameters
   (serialised by orjson in C; Postgres unpacks them with `jsonb_array_elements`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from django.db import connection
from psycopg.abc import Buffer
from psycopg.adapt import Dumper
from psycopg.pq import Format

from orderfeed.ingest.rules import (
    EVENT_COLUMNS,
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

CHANGES_WRITE_SQL = """
WITH executions AS (
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


def stored_matches(
    fingerprints: Iterable[str], positions: Iterable[tuple[str, int, int]]
) -> list[tuple[str, str, int, int]]:
    """Stored events with one of these fingerprints, or stored in the offset range the batch
    covers in one of its partitions: (fingerprint, topic, partition, offset). A superset of the
    duplicates by log position; the caller keeps exact matches."""
    ranges: dict[tuple[str, int], list[int]] = defaultdict(lambda: [2**63 - 1, -1])
    for topic, partition, offset in positions:
        bounds = ranges[(topic, partition)]
        if offset < bounds[0]:
            bounds[0] = offset
        if offset > bounds[1]:
            bounds[1] = offset
    keys = sorted(ranges)
    with _cursor() as cursor:
        cursor.execute(
            STORED_MATCHES_SQL,
            [
                "{" + ",".join(fingerprints) + "}",  # sha256 hex digests: nothing to quote
                [t for t, _ in keys],
                [p for _, p in keys],
                [ranges[k][0] for k in keys],
                [ranges[k][1] for k in keys],
            ],
        )
        rows: list[tuple[str, str, int, int]] = cursor.fetchall()
    return rows


def executions_lock(
    pending: Sequence[Pending],
) -> tuple[list[ExecutionState], dict[int, DecisionState]]:
    """The executions these events name (broker order id, else client order id, per lane) and
    their decisions, locked in primary-key order."""
    keys = {
        (p.update.account_label, p.update.broker_order_id, p.update.client_order_id)
        for p in pending
    }
    with _cursor() as cursor:
        cursor.execute(
            EXECUTIONS_LOCK_SQL,
            [
                pg_array_literal([k[0] for k in keys]),
                pg_array_literal([k[1] for k in keys]),
                pg_array_literal([k[2] for k in keys]),
            ],
        )
        rows = cursor.fetchall()
    executions = []
    decisions: dict[int, DecisionState] = {}
    for row in rows:
        executions.append(ExecutionState(*row[:13]))
        if row[13] is not None:
            decisions[row[13]] = DecisionState(*row[13:19])
    return executions, decisions


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


def events_insert(rows: Sequence[tuple[Any, ...]]) -> None:
    """The new events (EVENT_COLUMNS tuples) by one binary COPY."""
    if not rows:
        return
    with _cursor() as cursor:
        cursor.adapters.register_dumper(None, _JsonTextBinaryDumper)
        with cursor.copy(EVENTS_COPY_SQL) as copy:
            copy.set_types(EVENT_COPY_TYPES)
            for row in rows:
                copy.write_row(row)


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


def changes_write(
    *,
    executions: Sequence[ExecutionState],
    transitions: Sequence[tuple[Any, ...]],
    followed: Followed,
    now: datetime,
) -> None:
    """Executions, their transitions, decisions, theirs and TCA rows in one statement."""
    if not executions:
        return
    with _cursor() as cursor:
        cursor.execute(
            CHANGES_WRITE_SQL,
            {
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
            },
        )


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
