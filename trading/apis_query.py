"""The exact query contract of the API's read endpoints: fields that accept only what their
schema states, one validation step that refuses what DRF would quietly read another way (an empty
value, a parameter given twice), and the cursor page (`next`, `results`) of the list endpoints.

Used by the decision, execution, TCA and live-approval lists (`trading.apis_lists`,
`trading.apis_live_approvals`) and by the other read endpoints that take query parameters. A
refusal is a 400 `invalid_request` naming the parameter, in the one error format.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request

MAX_ID = 2**63 - 1  # bigint: a larger id is refused, not sent to Postgres
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# RFC 3339 date-time (OpenAPI's `date-time`): an offset is required, so every time is aware
RFC3339 = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
INTEGER = r"^-?[0-9]+$"
# a `YYYY-MM-DD` day of the years 2000 to 2999: the bounds a schema can state (with `format:
# date`, which refuses the days a month does not have, e.g. 2026-02-30)
DAY_2000_2999 = r"^2[0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


class StrictIntegerField(serializers.IntegerField):
    """Digits only: DRF's IntegerField also takes "5.0", " 5" and "+5", the schema does not."""

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, str) or not re.fullmatch(INTEGER, data):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class AwareDateTimeField(serializers.DateTimeField):
    """An RFC 3339 time with its offset (`2026-03-03T15:00:00Z`); a naive time is refused."""

    def to_internal_value(self, value: Any) -> datetime:
        parsed = None
        if isinstance(value, str) and re.fullmatch(RFC3339, value):
            try:
                parsed = parse_datetime(value.upper())
            except ValueError:  # e.g. month 13: the pattern matches, the calendar does not
                parsed = None
        if parsed is None:
            raise serializers.ValidationError("must be an RFC 3339 time with an offset")
        try:
            # in UTC: Postgres refuses offsets beyond ±15:59, RFC 3339 allows up to ±23:59
            return parsed.astimezone(UTC)
        except OverflowError:  # within a day of year 1 or 9999: as far as a time goes
            if parsed.year == 1:
                return datetime.min.replace(tzinfo=UTC)
            return datetime.max.replace(tzinfo=UTC)


class StrictDateField(serializers.DateField):
    """`YYYY-MM-DD` exactly (OpenAPI's `date`): strptime would also take `2026-3-5`."""

    def to_internal_value(self, value: Any) -> Any:
        if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


@extend_schema_field({"type": "string", "format": "date", "pattern": DAY_2000_2999})
class Day2000To2999Field(StrictDateField):
    """A day from 2000-01-01 to 2999-12-31, exactly as its schema states (`DAY_2000_2999` and
    `format: date`): what matches the pattern and is a calendar day, nothing else."""

    default_error_messages = {"out_of_range": "must be between 2000-01-01 and 2999-12-31"}

    def to_internal_value(self, value: Any) -> Any:
        if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            if not value.startswith("2"):
                self.fail("out_of_range")
            if not re.fullmatch(DAY_2000_2999, value):  # month 13, day 32: not a date at all
                self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


class QueryBooleanField(serializers.BooleanField):
    """`true` or `false` exactly, as the schema's boolean is written in a query: DRF's
    BooleanField also takes `1`, `yes`, `on`, `True`..."""

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):  # the field's default, when the parameter is absent
            return data
        if data not in ("true", "false"):
            self.fail("invalid", input=data)
        return bool(data == "true")


def text_field(pattern: str, max_length: int, help_text: str) -> serializers.RegexField:
    """An optional string matching `pattern` exactly as given (no whitespace trimmed)."""
    return serializers.RegexField(
        pattern, max_length=max_length, required=False, trim_whitespace=False, help_text=help_text
    )


def symbol_field() -> serializers.RegexField:
    return text_field(r"^[A-Za-z0-9./-]{1,32}$", 32, "case-insensitive")


def account_field() -> serializers.RegexField:
    return text_field(r"^[A-Za-z0-9_.-]{1,64}$", 64, "a lane label")


class CursorQuerySerializer(serializers.Serializer[Any]):
    """`after_id` and `limit`, the cursor of every list page."""

    after_id = StrictIntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="cursor: rows with a smaller id"
    )
    limit = StrictIntegerField(
        required=False, min_value=1, max_value=MAX_LIMIT, help_text=f"default {DEFAULT_LIMIT}"
    )


def query_validated(
    request: Request, serializer_class: type[serializers.Serializer[Any]]
) -> dict[str, Any]:
    """The validated query. DRF would read an empty value (`since=`) as absent and a repeated
    parameter (`limit=1&limit=2`) as its last value: both are refused, naming the parameter."""
    fields = serializer_class().fields
    refused: dict[str, list[str]] = {}
    for key in request.query_params:
        if key not in fields:
            continue
        values = request.query_params.getlist(key)
        if len(values) > 1:
            refused[key] = ["may be given once"]
        elif values[0] == "":
            refused[key] = ["may not be empty"]
    if refused:
        raise serializers.ValidationError(refused)
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def next_page_url(request: Request, query: dict[str, Any], next_after_id: int | None) -> str | None:
    """The URL of the following page (the same filters with `after_id`), None on the last."""
    if next_after_id is None:
        return None
    params = {key: value for key, value in request.query_params.items() if key in query}
    params["after_id"] = str(next_after_id)
    return request.build_absolute_uri(f"{request.path}?{urlencode(params)}")


def next_field() -> serializers.URLField:
    return serializers.URLField(allow_null=True, help_text="the next page; null on the last")
