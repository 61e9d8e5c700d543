"""`CachedBodyRenderer` (torghut_site/renderers.py) writes the JSON DRF's own `JSONRenderer`
writes (the same bytes, but for the spelling of a float's exponent: orjson writes `1e-8`, the
standard library `1e-08`, the same number), and encodes a shared body once."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer

from torghut_site.renderers import CachedBodyRenderer

NEW_YORK_WINTER = timezone(timedelta(hours=-5))


def _body() -> dict[str, Any]:
    return {
        "as_of": datetime(2026, 12, 7, 14, 30, 5, 123456, tzinfo=UTC),
        "on_the_minute": datetime(2026, 12, 7, 14, 30, tzinfo=UTC),
        "new_york": datetime(2026, 12, 7, 9, 30, tzinfo=NEW_YORK_WINTER),
        "day": date(2026, 12, 7),
        "equity": Decimal("100012.55"),
        "tiny": Decimal("0.00000001"),
        "age": timedelta(seconds=90, microseconds=500),
        "reason": "Überprüfung — ручной",
        "counts": {"submitted": 3, "rejected": 0},
        "by_id": {7: "seven"},
        "lanes": [{"label": "paper", "ok": True, "error": None, "ratio": 0.1 + 0.2}],
    }


def test_same_json_as_drf_renderer() -> None:
    body = _body()
    ours, drf = CachedBodyRenderer().render(body), JSONRenderer().render(body)
    assert ours.replace(b"1e-8", b"1e-08") == drf
    decoded = json.loads(CachedBodyRenderer().render(body))
    assert decoded["equity"] == 100012.55
    assert decoded["as_of"] == "2026-12-07T14:30:05.123456Z"
    assert decoded["new_york"] == "2026-12-07T09:30:00-05:00"
    assert decoded["age"] == "90.0005"
    assert decoded["by_id"] == {"7": "seven"}


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.text()
    | st.decimals(
        allow_nan=False, allow_infinity=False, places=6, max_value=10**9, min_value=-(10**9)
    )
    | st.datetimes(timezones=st.just(UTC))
)


@given(
    st.recursive(
        JSON_LEAVES,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_same_json_as_drf_renderer_for_any_body(value: Any) -> None:
    body = {"value": value}  # a body is an object (None alone renders as no body at all)
    ours = json.loads(CachedBodyRenderer().render(body))
    drf = json.loads(JSONRenderer().render(body))
    assert ours == drf
    assert json.dumps(ours, sort_keys=True) == json.dumps(drf, sort_keys=True)  # types too


def test_a_shared_body_is_encoded_once() -> None:
    body = _body()
    first = CachedBodyRenderer().render(body)
    # the same object again (the status cache's entry): the same bytes object, not re-encoded
    assert CachedBodyRenderer().render(body) is first
    other = _body()
    other["equity"] = Decimal("1.5")
    rendered = CachedBodyRenderer().render(other)
    assert rendered is not first
    assert json.loads(rendered)["equity"] == 1.5
    # an equal but distinct body is encoded afresh (identity, not equality, decides)
    assert CachedBodyRenderer().render(_body()) is not first
    assert CachedBodyRenderer().render(None) == b""
