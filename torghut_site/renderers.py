"""Fast JSON rendering (orjson) for the API's hot read paths, in the same JSON as DRF's
serializer fields write: Decimals as fixed-point strings, times as ISO 8601 with `Z` for UTC."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson
from django.utils.functional import Promise
from rest_framework.renderers import BaseRenderer


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # "0.00000000", never "0E-8"
    if isinstance(value, Promise):  # lazy translation strings in DRF's error details
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class OrjsonRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, default=_default, option=orjson.OPT_UTC_Z)
