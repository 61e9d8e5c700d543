"""A `.values()` queryset compiled to SQL once and run many times with new parameters.

Django compiles a queryset on every evaluation (resolving lookups, joins and columns), then
applies each column's converters row by row. For a hot read whose shape never changes (one list
page per filter combination) `compiled_values` keeps Django's own compiled SQL, column names and
converters, and `fetch_values` runs it through Django's cursor wrapper (query logging, execute
wrappers, error translation as for any ORM query) and applies the same converters, so the rows
are the ones `list(queryset)` would give, on SQLite as on Postgres.

On Postgres the result rows are read in psycopg's binary format (numbers, times and text decoded
without parsing their text form: measured about a third of the text form's CPU for a 50-row
page). That needs a server-bound psycopg cursor; its statement is not prepared, as Django's own
client-side cursors never are. Times come back in the session time zone, which Django sets to
`connection.timezone_name`; the binary path is taken only when that is UTC, the zone Django's
own loader would stamp on them, so the values are the same either way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import QuerySet

Converter = Callable[[Any, Any, Any], Any]


@dataclass(frozen=True)
class CompiledValues:
    """The SQL of a `.values()` queryset, its parameters' count, its row keys and, per column
    position, the converters Django applies (with the expression they take)."""

    alias: str
    sql: str
    params: tuple[Any, ...]
    names: tuple[str, ...]
    converters: tuple[tuple[int, tuple[Converter, ...], Any], ...]


def compiled_values(queryset: QuerySet[Any]) -> CompiledValues:
    """Compile a `.values()` queryset (no `.extra()`, no composite keys) as Django would."""
    query = queryset.query
    compiler = query.get_compiler(queryset.db)
    sql, params = compiler.as_sql()
    names = tuple(query.selected or (*query.values_select, *query.annotation_select))
    fields = [s[0] for s in compiler.select[0 : compiler.col_count]]
    if query.extra_select or len(fields) != len(names):
        raise ValueError("compiled_values takes a plain .values() queryset")
    converters = tuple(
        (position, tuple(convs), expression)
        for position, (convs, expression) in sorted(compiler.get_converters(fields).items())
    )
    return CompiledValues(
        alias=queryset.db, sql=sql, params=tuple(params), names=names, converters=converters
    )


def fetch_values(compiled: CompiledValues, params: Sequence[Any]) -> list[dict[str, Any]]:
    """The rows of `compiled` run with `params` (in the order the compiled SQL takes them)."""
    connection = connections[compiled.alias]
    if _binary_rows(connection):
        rows = _fetch_binary(connection, compiled.sql, params)
    else:
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
    names = compiled.names
    if not compiled.converters:
        return [dict(zip(names, row, strict=True)) for row in rows]
    out = []
    for row in rows:
        values = list(row)
        for position, convs, expression in compiled.converters:
            value = values[position]
            for convert in convs:
                value = convert(value, expression, connection)
            values[position] = value
        out.append(dict(zip(names, values, strict=True)))
    return out


def _binary_rows(connection: Any) -> bool:
    return bool(connection.vendor == "postgresql" and connection.timezone_name == "UTC")


@cache
def _binary_rows_cursor() -> type[Any]:
    import psycopg  # the Postgres driver, imported once a Postgres connection asks for it

    class BinaryRowsCursor(psycopg.Cursor[Any]):
        """Results in binary format; the statement bound server-side, never prepared."""

        def execute(self, query: Any, params: Any = None, **_: Any) -> Any:
            return super().execute(query, params, prepare=False, binary=True)

    return BinaryRowsCursor


def _fetch_binary(connection: Any, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    # What `connection.cursor()` checks before it makes a cursor.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = _binary_rows_cursor()(connection.connection)
    wrapper = CursorDebugWrapper if connection.queries_logged else CursorWrapper
    with wrapper(raw, connection) as cursor:
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows
