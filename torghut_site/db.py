"""Model helpers shared by the apps."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

import orjson
from django.db import connections, models, router
from django.db.models import Q

M = TypeVar("M", bound=models.Model)


def choices_constraint(
    field: str, choices: type[models.TextChoices], name: str
) -> models.CheckConstraint:
    """`choices=` alone does not constrain the data; this CHECK does."""
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


# -- set-based writes for hot paths (order-feed ingest) ---------------------------------------
# Django's bulk_update builds one CASE WHEN per field and row (quadratic work for large batches)
# and bulk_create resolves every value through the expression machinery; for thousands of rows
# per batch these helpers send the same rows as one COPY / one UPDATE … FROM (VALUES …) instead.


def _fields_for_insert(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return [
        f
        for f in model._meta.concrete_fields
        if not (f.primary_key and isinstance(f, models.AutoField | models.BigAutoField))
    ]


class JsonText(str):
    """JSON already serialised (e.g. a Kafka record's bytes): stored as is, not dumped again."""

    __slots__ = ()


def _pg_value(field: models.Field[Any, Any], value: Any) -> Any:
    """psycopg adapts Decimal, datetime, str and int itself; JSON goes as text."""
    if isinstance(field, models.JSONField) and value is not None:
        return value if isinstance(value, JsonText) else json.dumps(value, cls=field.encoder)
    return value


def _db_value(field: models.Field[Any, Any], value: Any, connection: Any) -> Any:
    if isinstance(value, JsonText):
        return str(value)
    return field.get_db_prep_save(value, connection)


def bulk_insert(model: type[M], objs: Sequence[M]) -> int:
    """Insert model instances (no primary keys come back); see `bulk_insert_rows`."""
    fields = _fields_for_insert(model)
    return bulk_insert_rows(
        model,
        [f.attname for f in fields],
        [tuple(f.pre_save(obj, True) for f in fields) for obj in objs],
    )


def bulk_insert_rows(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> int:
    """Insert plain value tuples (attribute order of `columns`), without building instances.

    COPY on Postgres, executemany elsewhere. Defaults are not applied: pass every column that
    has no database default. A unique violation raises IntegrityError for the whole call.
    """
    if not rows:
        return 0
    connection = connections[router.db_for_write(model)]
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    fields = [by_attname[name] for name in columns]
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    json_positions = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.cursor  # the psycopg cursor under Django's wrapper
            with (
                connection.wrap_database_errors,  # psycopg errors become django.db errors
                raw.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
            ):
                for row in rows:
                    if json_positions:
                        row = list(row)
                        for i in json_positions:
                            row[i] = _pg_value(fields[i], row[i])
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(fields))
            cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks})",  # noqa: S608 - quoted model names
                [
                    tuple(_db_value(f, v, connection) for f, v in zip(fields, row, strict=True))
                    for row in rows
                ],
            )
    return len(rows)


def bulk_update_fields(model: type[M], objs: Sequence[M], field_names: Sequence[str]) -> int:
    """UPDATE `field_names` of `objs` by primary key in one statement (auto_now not applied)."""
    fields: list[models.Field[Any, Any]] = [model._meta.get_field(n) for n in field_names]  # type: ignore[misc]
    return bulk_update_rows(
        model,
        [f.attname for f in fields],
        [(obj.pk, *(getattr(obj, f.attname) for f in fields)) for obj in objs],
    )


def bulk_update_rows(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> int:
    """UPDATE `columns` (attribute names) by primary key from plain tuples `(pk, *values)`.

    Postgres: the rows travel as ONE json parameter (serialised by orjson in C) and the server
    unpacks them with `json_to_recordset`: `UPDATE … FROM json_to_recordset(%s) AS v(…)`.
    Decimals go as strings (exact), datetimes as ISO-8601 with offset (microseconds kept).
    """
    if not rows:
        return 0
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    pk_field = meta.pk
    assert pk_field is not None
    by_attname = {f.attname: f for f in meta.concrete_fields}
    fields = [by_attname[name] for name in columns]
    qn = connection.ops.quote_name
    table = qn(meta.db_table)
    pk_column = qn(pk_field.column)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            names = [f"c{i}" for i in range(len(fields))]
            types = ", ".join(
                f"{n} {_pg_record_type(f, connection)}" for f, n in zip(fields, names, strict=True)
            )
            sets = ", ".join(f"{qn(f.column)} = v.{n}" for f, n in zip(fields, names, strict=True))
            cursor.execute(
                f"UPDATE {table} AS t SET {sets} "  # noqa: S608 - quoted model names
                f"FROM json_to_recordset(%s::json) AS v(pk bigint, {types}) "
                f"WHERE t.{pk_column} = v.pk",
                [json_records(fields, rows, with_pk=True)],
            )
        else:
            sets = ", ".join(f"{qn(f.column)} = %s" for f in fields)
            cursor.executemany(
                f"UPDATE {table} SET {sets} WHERE {pk_column} = %s",  # noqa: S608 - quoted names
                [
                    (
                        *(
                            _db_value(f, v, connection)
                            for f, v in zip(fields, row[1:], strict=True)
                        ),
                        row[0],
                    )
                    for row in rows
                ],
            )
    return len(rows)


def bulk_upsert_rows(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    unique_columns: Sequence[str],
    update_columns: Sequence[str],
) -> int:
    """INSERT plain tuples, or UPDATE `update_columns` where a row with the same
    `unique_columns` (backed by a unique constraint) exists: one statement.

    Rows must be unique on `unique_columns` (Postgres refuses to update one row twice).
    Postgres: one json parameter, as in `bulk_update_rows`; elsewhere Django's bulk_create.
    """
    if not rows:
        return 0
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    by_attname = {f.attname: f for f in meta.concrete_fields}
    fields = [by_attname[name] for name in columns]
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(
            [model(**dict(zip(columns, row, strict=True))) for row in rows],
            update_conflicts=True,
            unique_fields=[by_attname[c].name for c in unique_columns],
            update_fields=[by_attname[c].name for c in update_columns],
        )
        return len(rows)
    qn = connection.ops.quote_name
    names = [f"c{i}" for i in range(len(fields))]
    types = ", ".join(
        f"{n} {_pg_record_type(f, connection)}" for f, n in zip(fields, names, strict=True)
    )
    target = ", ".join(qn(by_attname[c].column) for c in unique_columns)
    sets = ", ".join(
        f"{qn(by_attname[c].column)} = EXCLUDED.{qn(by_attname[c].column)}" for c in update_columns
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "  # noqa: S608 - quoted model names
            f"SELECT {', '.join(names)} FROM json_to_recordset(%s::json) AS v({types}) "
            f"ON CONFLICT ({target}) DO UPDATE SET {sets}",
            [json_records(fields, rows, with_pk=False)],
        )
    return len(rows)


def _pg_record_type(field: models.Field[Any, Any], connection: Any) -> str:
    db_type = field.db_type(connection)
    assert db_type is not None
    return db_type


def json_records(
    fields: Sequence[models.Field[Any, Any]], rows: Sequence[Sequence[Any]], *, with_pk: bool
) -> str:
    """Rows as a JSON array of objects for `json_to_recordset`: keys `pk` (when `with_pk`, the
    row's first value) then `c0`, `c1`, … for `fields`.

    JSON fields with a custom encoder, and values orjson cannot write (ints beyond 64 bits,
    non-string keys), are serialised by the standard library instead: the same JSON.
    """
    offset = 1 if with_pk else 0
    keys = (["pk"] if with_pk else []) + [f"c{i}" for i in range(len(fields))]
    json_fields = [(i + offset, f) for i, f in enumerate(fields) if isinstance(f, models.JSONField)]

    def records(embed: Callable[[str], Any]) -> list[dict[str, Any]]:
        result = []
        for row in rows:
            record = dict(zip(keys, row, strict=True))
            for i, field in json_fields:
                value = row[i]
                if isinstance(value, JsonText):
                    record[keys[i]] = embed(str(value))
                elif value is not None and field.encoder is not None:
                    record[keys[i]] = embed(json.dumps(value, cls=field.encoder))
            result.append(record)
        return result

    try:
        return orjson.dumps(records(orjson.Fragment), default=_json_default).decode()
    except orjson.JSONEncodeError:
        return json.dumps(records(json.loads), default=_json_default_std)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _json_default_std(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return _json_default(value)


def pg_array_literal(values: Iterable[str | int]) -> str:
    """A Postgres array literal (`'{"a","b"}'`) for one `= ANY(%s::text[])` parameter.

    psycopg adapts Python lists element by element in Python; for thousands of keys per batch
    one pre-built literal is several times cheaper. Strings are always quoted, so commas,
    braces, spaces and the word NULL stay data; inside quotes only backslash and double quote
    need escaping.
    """
    parts = []
    for value in values:
        if isinstance(value, int):
            parts.append(str(value))
        else:
            parts.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"
