"""DRF plumbing shared by every app: one error format, bounded pagination, storable JSON."""

from __future__ import annotations

import json
import logging
import math
import re
from decimal import ROUND_DOWN, Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, pagination, parsers, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from torghut_site.logging import current_request_id


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    default_limit = 200
    max_limit = settings.API_MAX_PAGE_SIZE


# Postgres text and jsonb cannot hold NUL, and UTF-8 cannot encode a lone surrogate (valid in a
# JSON string escape, e.g. "\\ud800"): a body carrying either would fail at INSERT time with a 500.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_text(value: Any) -> bool:
    """True if any string in `value` (keys included) has a NUL or a lone surrogate."""
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(unstorable_text(k) or unstorable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(unstorable_text(item) for item in value)
    return False


logger = logging.getLogger(__name__)


class JsonTooDeepError(ValueError):
    """A JSON document nested deeper than allowed (a ValueError, like any other invalid JSON)."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        super().__init__(f"JSON nested deeper than {max_depth} levels is not accepted")


def json_depth_exceeds(value: Any, max_depth: int) -> bool:
    """True if `value` (parsed JSON) nests lists/objects deeper than `max_depth`. Iterative: a
    recursive walk would itself hit the recursion limit on the documents it must refuse."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[dict[Any, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def json_loads_bounded(body: str | bytes, *, max_depth: int | None = None) -> Any:
    """`json.loads` for request bodies read outside DRF's parsers: a document nested deeper than
    `max_depth` (default `API_MAX_JSON_DEPTH`) raises `JsonTooDeepError`, never RecursionError."""
    limit = settings.API_MAX_JSON_DEPTH if max_depth is None else max_depth
    try:
        data = json.loads(body)
    except RecursionError as exc:
        raise JsonTooDeepError(limit) from exc
    if json_depth_exceeds(data, limit):
        raise JsonTooDeepError(limit)
    return data


def json_too_deep_error(max_depth: int) -> ApiError:
    return ApiError(code="json_too_deep", message=str(JsonTooDeepError(max_depth)))


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser that rejects, as a 400, text the database could not store and documents
    nested deeper than `API_MAX_JSON_DEPTH` (`json_too_deep`), which would otherwise end in a
    RecursionError (an HTML 500) in the parser or in whatever walks the data next."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.API_MAX_JSON_DEPTH
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise json_too_deep_error(limit) from exc
        if json_depth_exceeds(data, limit):
            raise json_too_deep_error(limit)
        if unstorable_text(data):
            raise exceptions.ParseError(
                "JSON parse error - NUL characters and lone surrogates are not accepted"
            )
        return data


class BoundedDecimalField(serializers.DecimalField):
    """A Decimal given as a JSON number or a string, taken exactly as its schema states
    (`openapi_schema`, which `torghut_site.schema.AutoSchema` publishes as is): a number (not a
    boolean) from `min_value` to `max_value`, or a string matching `pattern` (which the caller
    writes to allow only decimals whose truncated value is in range; no exponent, no NaN).
    Digits beyond `decimal_places` are cut off toward zero (ROUND_DOWN), so the value stays
    within its bounds and fits its column."""

    default_error_messages = {
        "bounded": "must be a number from {min_value} to {max_value}, or a decimal string in "
        "that range (pattern {pattern})",
    }

    def __init__(
        self,
        *,
        pattern: str,
        min_value: Decimal,
        max_value: Decimal,
        max_digits: int,
        decimal_places: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            max_digits=max_digits,
            decimal_places=decimal_places,
            min_value=min_value,
            max_value=max_value,
            **kwargs,
        )
        self.pattern = pattern
        self.bounds = (min_value, max_value)
        self.step = Decimal(1).scaleb(-decimal_places)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        # only null is empty: DecimalField would also read a blank string as null
        empty: tuple[bool, Any] = serializers.Field.validate_empty_values(self, data)
        return empty

    def to_internal_value(self, data: Any) -> Decimal:
        low, high = self.bounds
        value: Decimal | None = None
        if isinstance(data, str) and re.fullmatch(self.pattern, data):
            value = Decimal(data)
        elif isinstance(data, int) and not isinstance(data, bool) and low <= data <= high:
            value = Decimal(data)
        elif isinstance(data, float) and math.isfinite(data) and float(low) <= data <= float(high):
            # the float's shortest repr, as the JSON text wrote it (0.1, not 0.1000000000000000055)
            value = Decimal(repr(data))
        if value is None:
            self.fail("bounded", min_value=low, max_value=high, pattern=self.pattern)
        truncated = value.quantize(self.step, rounding=ROUND_DOWN)
        if truncated == 0:
            truncated = abs(truncated)  # -0 and -0.00001 as 0.0000
        checked: Decimal = self.validate_precision(truncated)
        return checked

    def openapi_schema(self) -> dict[str, Any]:
        low, high = self.bounds
        schema: dict[str, Any] = {
            "anyOf": [
                {"type": "number", "minimum": float(low), "maximum": float(high)},
                {"type": "string", "pattern": self.pattern},
            ]
        }
        if self.allow_null:
            schema["nullable"] = True
        return schema


def _json_type_expected(field: serializers.Field[Any, Any, Any, Any], value: Any) -> str | None:
    """What JSON type `field` takes when `value` (not null) is not of it, else None. DRF would
    coerce: 5 into "5" for a CharField, "true" or 1 into True, "5" or 5.0 into 5. A Decimal is
    a string, as the schema (and the output) writes it."""
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "a boolean"
    if isinstance(field, BoundedDecimalField):  # it says for itself which numbers and strings
        return None
    if isinstance(field, serializers.IntegerField):
        whole = isinstance(value, int) and not isinstance(value, bool)
        return None if whole else "an integer"
    if isinstance(field, serializers.FloatField):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return None if number else "a number"
    textual = (
        serializers.CharField,
        serializers.DecimalField,
        serializers.DateTimeField,
        serializers.DateField,
        serializers.ChoiceField,
    )
    if isinstance(field, textual):
        return None if isinstance(value, str) else "a string"
    return None


# A JSON body whose values must already have the JSON type the schema states. (Comments, not
# docstrings: drf-spectacular would give every subclass's component this description.)
class TypedInputSerializer(serializers.Serializer[Any]):
    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            wrong = {
                name: [f"must be {expected}"]
                for name, field in self.fields.items()
                if name in data
                and data[name] is not None
                and (expected := _json_type_expected(field, data[name])) is not None
            }
            if wrong:
                raise serializers.ValidationError(wrong)
        return super().to_internal_value(data)


# A JSON body with only the keys the serializer declares (the schema says
# `additionalProperties: false`, `torghut_site.schema.AutoSchema`): an unknown key is a 400, not
# silently dropped, so a misspelt optional field cannot pass unnoticed.
class ExactInputSerializer(TypedInputSerializer):
    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(key for key in data if key not in self.fields)
            if unknown:
                raise serializers.ValidationError({key: ["unknown field"] for key in unknown})
        return super().to_internal_value(data)


# An answer whose keys are all named: its response schema says `additionalProperties: false`
# (`torghut_site.schema.AutoSchema`), so a key the code adds without naming it here fails the
# schema-conformance tests instead of reaching clients undocumented.
class ExactOutputSerializer(serializers.Serializer[Any]):
    pass


class ApiError(exceptions.APIException):
    """A domain error with a stable machine-readable code, e.g.
    `whitepaper_control_auth_required`."""

    def __init__(
        self, *, code: str, message: str, status_code: int = 400, details: Any = None
    ) -> None:
        self.status_code = status_code
        self.error_code = code
        self.details = details
        super().__init__(detail=message, code=code)


def error_body(*, code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {
        "error": {"code": code, "message": message, "details": details},
        "request_id": current_request_id(),
    }


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error looks like {"error": {"code", "message", "details"}, "request_id"}."""
    if isinstance(exc, RecursionError):
        # the parser refuses deep documents first; this catches any other input (a body a view
        # reads itself) that still nests deep enough to exhaust the stack
        logger.warning("request refused: RecursionError while handling it", exc_info=exc)
        exc = json_too_deep_error(settings.API_MAX_JSON_DEPTH)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django's 500 handling (and logging) takes over
    if isinstance(exc, ApiError):
        code, message, details = exc.error_code, str(exc.detail), exc.details
    elif isinstance(exc, exceptions.ValidationError):
        code, message, details = "invalid_request", "The request is not valid.", exc.detail
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        message, details = str(exc.detail), None
        if isinstance(exc.detail, dict | list):
            message, details = str(exc.default_detail), exc.detail
    else:  # pragma: no cover - drf only answers APIException subclasses
        code, message, details = "error", str(exc), None
    response.data = error_body(code=code, message=message, details=details)
    return response
