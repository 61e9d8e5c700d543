"""Fast JSON rendering (orjson) for the API's hot read paths.

`OrjsonRenderer` writes the JSON DRF's serializer fields write (Decimals as fixed-point strings,
times as ISO 8601 with `Z` for UTC); `CachedBodyRenderer` writes what DRF's own `JSONRenderer`
writes for a body that no serializer coerced (Decimals as numbers) and encodes a shared body once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

import orjson
from django.utils.functional import Promise
from rest_framework.renderers import BaseRenderer


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # "0.00000000", never "0E-8"
    if isinstance(value, Promise):  # lazy translation strings in DRF's error details
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _default_as_drf(value: Any) -> Any:
    """What DRF's own JSON encoder writes for the types orjson leaves to `default`."""
    if isinstance(value, Decimal):
        return float(value)  # DRF's encoder: a Decimal a serializer did not coerce is a number
    if isinstance(value, timedelta):
        return str(value.total_seconds())
    return _default(value)


class OrjsonRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None
    encode_option: ClassVar[int] = orjson.OPT_UTC_Z

    @staticmethod
    def encode_default(value: Any) -> Any:
        return _default(value)

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, default=self.encode_default, option=self.encode_option)


class CachedBodyRenderer(OrjsonRenderer):
    """DRF's JSON for a body that a cache shares between requests (`/trading/status`), written by
    orjson and kept for the last body rendered: while the cache hands out the same body object,
    it is encoded once, not once per request. The JSON is the same as DRF's `JSONRenderer`'s
    (Decimals as numbers, times ISO 8601 with `Z`, compact, non-ASCII as is). The body must not
    be changed once rendered (the cache's readers never change it)."""

    encode_option = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
    _last: tuple[Any, bytes] | None = None  # (body, its JSON): holding the body keeps its id

    @staticmethod
    def encode_default(value: Any) -> Any:
        return _default_as_drf(value)

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        last = CachedBodyRenderer._last
        if data is not None and last is not None and last[0] is data:
            return last[1]
        rendered = super().render(data, accepted_media_type, renderer_context)
        if data is not None:
            CachedBodyRenderer._last = (data, rendered)
        return rendered
