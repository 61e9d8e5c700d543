"""Model helpers shared by the apps."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

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
    """UPDATE `field_names` of `objs` by primary key in one statement (auto_now not applied).

    Postgres: one array parameter per column, `UPDATE … FROM (SELECT unnest(…)) WHERE pk`.
    """
    if not objs:
        return 0
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    pk_field = meta.pk
    assert pk_field is not None
    fields: list[models.Field[Any, Any]] = [meta.get_field(name) for name in field_names]  # type: ignore[misc]
    qn = connection.ops.quote_name
    table = qn(meta.db_table)
    pk_column = qn(pk_field.column)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            columns = [
                "unnest(%s::text[])::jsonb"
                if isinstance(f, models.JSONField)
                else f"unnest(%s::{f.db_type(connection)}[])"
                for f in fields
            ]
            names = [f"c{i}" for i in range(len(fields))]
            selects = ", ".join(f"{col} AS {n}" for col, n in zip(columns, names, strict=True))
            sets = ", ".join(f"{qn(f.column)} = v.{n}" for f, n in zip(fields, names, strict=True))
            params: list[Any] = [[obj.pk for obj in objs]]
            params += [[_pg_value(f, getattr(obj, f.attname)) for obj in objs] for f in fields]
            cursor.execute(
                f"UPDATE {table} AS t SET {sets} "  # noqa: S608 - quoted model names
                f"FROM (SELECT unnest(%s::bigint[]) AS pk, {selects}) AS v "
                f"WHERE t.{pk_column} = v.pk",
                params,
            )
        else:
            sets = ", ".join(f"{qn(f.column)} = %s" for f in fields)
            cursor.executemany(
                f"UPDATE {table} SET {sets} WHERE {pk_column} = %s",  # noqa: S608 - quoted names
                [
                    (
                        *(f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields),
                        obj.pk,
                    )
                    for obj in objs
                ],
            )
    return len(objs)
