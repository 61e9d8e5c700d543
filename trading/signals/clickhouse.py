"""Signals from ClickHouse (`torghut.ta_signals`) over its HTTP interface
(docs/compatibility.md#signals).

Requests are `GET <url>/?query=<SQL> FORMAT JSONEachRow` with `X-ClickHouse-User` /
`X-ClickHouse-Key` headers and a timeout. The table's shape is detected from `system.columns`:
"envelope" when it has a `payload` column, otherwise "flat"; the time column is `event_ts`, else
`ts`. Reads follow the shared cursor rules (`trading.signals.base`) with the strict
(event_ts, symbol, seq) predicate. A table without `seq` orders by (time, symbol); it re-reads from
2 s before the cursor and compares positions in Python, so a cursor kept at microsecond precision
still matches a `DateTime`/`DateTime64(3)` column exactly. The newest event time is cached 30 s
and the detected schema 5 minutes, per (url, table), because a source object lives for one cycle.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from trading.signals.base import (
    CLICKHOUSE_URL_MISSING,
    DEFAULT_BATCH_LIMIT,
    CursorRules,
    CursorSignalSource,
    SignalSourceError,
    require_aware,
)
from trading.signals.types import (
    ParsedRows,
    SignalBatch,
    SignalCursor,
    parse_rows,
    parse_timestamp,
)

SOURCE_NAME = "clickhouse"
ENVELOPE_COLUMNS = (
    "event_ts",
    "ingest_ts",
    "symbol",
    "payload",
    "window_size",
    "window_step",
    "seq",
    "source",
    "feature_schema_version",
)
FLAT_COLUMNS = (
    "event_ts",
    "ts",
    "ingest_ts",
    "symbol",
    "seq",
    "source",
    "macd",
    "macd_signal",
    "macd_hist",
    "signal",
    "rsi",
    "rsi14",
    "ema",
    "ema12",
    "ema26",
    "vwap",
    "vwap_session",
    "vwap_w5m",
    "boll_mid",
    "boll_upper",
    "boll_lower",
    "imbalance_spread",
    "vol_realized_w60s",
    "signal_json",
    "timeframe",
    "window_size",
    "price",
    "close",
    "spread",
    "imbalance_bid_px",
    "imbalance_ask_px",
    "volume",
)
FLAT_OVERLAP = timedelta(seconds=2)
LATEST_TTL = timedelta(seconds=30)
SCHEMA_TTL = timedelta(minutes=5)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_ERROR_CODE = re.compile(r"Code:\s*(\d+)")


class ClickHouseError(SignalSourceError):
    def __init__(self, message: str, *, code: int | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class TableSchema:
    kind: str  # envelope | flat
    time_column: str  # event_ts | ts
    has_seq: bool
    columns: tuple[str, ...]  # the columns we select, in table order


def quote_string(value: str) -> str:
    """A ClickHouse single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def datetime64_literal(value: datetime) -> str:
    text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"toDateTime64('{text}', 6, 'UTC')"


def cursor_predicate(cursor: SignalCursor, *, time_column: str, has_seq: bool) -> str:
    """Rows strictly after `cursor` in (time, symbol[, seq]) order."""
    ts = datetime64_literal(cursor.event_ts)
    symbol = quote_string(cursor.symbol)
    if has_seq:
        tie = f"(symbol > {symbol} OR (symbol = {symbol} AND seq > {int(cursor.seq)}))"
    else:
        tie = f"symbol > {symbol}"
    return f"({time_column} > {ts} OR ({time_column} = {ts} AND {tie}))"


@dataclass
class _Cached:
    at: datetime
    value: Any


_latest_cache: dict[tuple[str, str], _Cached] = {}
_schema_cache: dict[tuple[str, str, str], _Cached] = {}
_cache_lock = threading.Lock()


def clear_caches() -> None:
    with _cache_lock:
        _latest_cache.clear()
        _schema_cache.clear()


def _cached(
    cache: dict[Any, _Cached], key: Any, *, now: datetime, ttl: timedelta
) -> _Cached | None:
    with _cache_lock:
        entry = cache.get(key)
    if entry is None or not (entry.at <= now < entry.at + ttl):
        return None
    return entry


class ClickHouseSignalSource(CursorSignalSource):
    def __init__(
        self,
        *,
        url: str,
        table: str = "torghut.ta_signals",
        username: str = "",
        password: str = "",
        timeout: float = 5.0,
        schema: str = "auto",
        rules: CursorRules | None = None,
        http: requests.Session | None = None,
    ) -> None:
        super().__init__(rules=rules)
        if not _IDENTIFIER.match(table):
            raise ValueError(f"invalid ClickHouse table name {table!r}")
        if schema not in ("auto", "envelope", "flat"):
            raise ValueError(f"schema must be auto, envelope or flat, got {schema!r}")
        self.url = url.rstrip("/")
        self.table = table
        self.username = username
        self.password = password
        self.timeout = timeout
        self.schema_mode = schema
        self.http = http or requests.Session()

    @classmethod
    def from_settings(cls) -> ClickHouseSignalSource:
        from django.conf import settings

        return cls(
            url=settings.TA_CLICKHOUSE_URL,
            table=settings.TRADING_SIGNAL_TABLE,
            username=settings.TA_CLICKHOUSE_USERNAME,
            password=settings.TA_CLICKHOUSE_PASSWORD,
            timeout=settings.TA_CLICKHOUSE_CONN_TIMEOUT_SECONDS,
            schema=settings.TRADING_SIGNAL_SCHEMA,
            rules=CursorRules.from_values(
                lookback_minutes=settings.TRADING_SIGNAL_LOOKBACK_MINUTES,
                empty_batch_advance_seconds=settings.TRADING_SIGNAL_EMPTY_BATCH_ADVANCE_SECONDS,
            ),
        )

    # -- HTTP -------------------------------------------------------------------------------
    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run one query, `FORMAT JSONEachRow` appended; the decoded rows."""
        headers = {}
        if self.username:
            headers["X-ClickHouse-User"] = self.username
        if self.password:
            headers["X-ClickHouse-Key"] = self.password
        try:
            response = self.http.get(
                self.url + "/",
                params={"query": f"{sql} FORMAT JSONEachRow"},
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise ClickHouseError(f"ClickHouse request failed: {exc}") from exc
        if response.status_code != 200:
            text = response.text.strip()
            match = _ERROR_CODE.search(text)
            raise ClickHouseError(
                f"ClickHouse HTTP {response.status_code}: {text[:500]}",
                code=int(match.group(1)) if match else None,
                status=response.status_code,
            )
        rows: list[dict[str, Any]] = []
        for line in response.text.splitlines():
            if line.strip():
                try:
                    decoded = json.loads(line)
                except ValueError as exc:
                    raise ClickHouseError(
                        f"ClickHouse returned a non-JSON line: {line[:200]}"
                    ) from exc
                if isinstance(decoded, Mapping):
                    rows.append(dict(decoded))
        return rows

    # -- schema -----------------------------------------------------------------------------
    def schema(self, now: datetime) -> TableSchema:
        key = (self.url, self.table, self.schema_mode)
        entry = _cached(_schema_cache, key, now=now, ttl=SCHEMA_TTL)
        if entry is not None:
            cached: TableSchema = entry.value
            return cached
        database, _, table = self.table.rpartition(".")
        where = f"table = {quote_string(table)}"
        where += (
            f" AND database = {quote_string(database)}"
            if database
            else " AND database = currentDatabase()"
        )
        # identifiers are validated (_IDENTIFIER) and values quoted: S608 does not see that
        rows = self.query(f"SELECT name FROM system.columns WHERE {where} ORDER BY position")  # noqa: S608
        names = [str(row["name"]) for row in rows if "name" in row]
        if not names:
            raise ClickHouseError(f"ClickHouse table {self.table} not found or has no columns")
        kind = self.schema_mode
        if kind == "auto":
            kind = "envelope" if "payload" in names else "flat"
        if "event_ts" in names:
            time_column = "event_ts"
        elif "ts" in names:
            time_column = "ts"
        else:
            raise ClickHouseError(f"ClickHouse table {self.table} has neither event_ts nor ts")
        if "symbol" not in names:
            raise ClickHouseError(f"ClickHouse table {self.table} has no symbol column")
        wanted = ENVELOPE_COLUMNS if kind == "envelope" else FLAT_COLUMNS
        selected = tuple(name for name in names if name in wanted or name == time_column)
        result = TableSchema(
            kind=kind, time_column=time_column, has_seq="seq" in names, columns=selected
        )
        with _cache_lock:
            _schema_cache[key] = _Cached(at=now, value=result)
        return result

    # -- CursorSignalSource -------------------------------------------------------------------
    def fetch(
        self, cursor: SignalCursor | None, *, limit: int = DEFAULT_BATCH_LIMIT, now: datetime
    ) -> SignalBatch:
        if not self.url:
            return SignalBatch(
                signals=(),
                cursor_after=None,
                no_signal_reason=CLICKHOUSE_URL_MISSING,
                latest_event_ts=None,
            )
        return super().fetch(cursor, limit=limit, now=now)

    def latest_event_ts(self, now: datetime) -> datetime | None:
        now = require_aware(now)
        key = (self.url, self.table)
        entry = _cached(_latest_cache, key, now=now, ttl=LATEST_TTL)
        if entry is not None:
            cached: datetime | None = entry.value
            return cached
        column = self.schema(now).time_column
        rows = self.query(f"SELECT count() AS n, max({column}) AS latest FROM {self.table}")  # noqa: S608
        latest: datetime | None = None
        if rows and int(rows[0].get("n") or 0) > 0:
            latest = parse_timestamp(rows[0].get("latest"))
        with _cache_lock:
            _latest_cache[key] = _Cached(at=now, value=latest)
        return latest

    def read_after(self, start: SignalCursor, *, limit: int, now: datetime) -> ParsedRows:
        schema = self.schema(now)
        column = schema.time_column
        select = ", ".join(schema.columns)
        if schema.has_seq:
            sql = (
                f"SELECT {select} FROM {self.table} "  # noqa: S608
                f"WHERE {cursor_predicate(start, time_column=column, has_seq=True)} "
                f"ORDER BY {column}, symbol, seq LIMIT {int(limit)}"
            )
            return parse_rows(self.query(sql), source=SOURCE_NAME)
        overlap = (
            f"SELECT {select} FROM {self.table} "  # noqa: S608
            f"WHERE {column} >= {datetime64_literal(start.event_ts - FLAT_OVERLAP)} "
            f"ORDER BY {column}, symbol LIMIT {int(limit)}"
        )
        rows = self.query(overlap)
        fresh = [row for row in rows if _after(row, start)]
        if not fresh and len(rows) >= limit:
            # the overlap alone filled the page: continue strictly after the cursor instead
            strict = (
                f"SELECT {select} FROM {self.table} "  # noqa: S608
                f"WHERE {cursor_predicate(start, time_column=column, has_seq=False)} "
                f"ORDER BY {column}, symbol LIMIT {int(limit)}"
            )
            fresh = [row for row in self.query(strict) if _after(row, start)]
        return parse_rows(fresh, source=SOURCE_NAME)


def _after(row: Mapping[str, Any], start: SignalCursor) -> bool:
    ts = parse_timestamp(row.get("event_ts", row.get("ts")))
    symbol = row.get("symbol")
    if ts is None or not isinstance(symbol, str):
        return True  # unplaceable rows are kept so parse_rows counts them invalid
    return SignalCursor(ts, symbol, 0) > start
