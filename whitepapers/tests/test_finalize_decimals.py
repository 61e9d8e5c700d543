"""The finalize callback's Decimal fields (`torghut_site.drf.BoundedDecimalField`): a JSON number
within the bounds or a string matching the published pattern, nothing else; digits past the
4th decimal place cut off toward zero; the schema states exactly that."""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from whitepapers.apis import (
    CONFIDENCE_PATTERN,
    SCORE_PATTERN,
    SynthesisSerializer,
    VerdictSerializer,
)
from whitepapers.models import DocumentSource, WhitepaperAnalysisRun, WhitepaperDocument


def verdict(**fields: Any) -> tuple[bool, Any]:
    serializer = VerdictSerializer(data=fields)
    ok = serializer.is_valid()
    return ok, serializer.validated_data if ok else serializer.errors


CONFIDENCE_REFUSAL = (
    "must be a number from 0 to 1, or a decimal string in that range (pattern "
    + CONFIDENCE_PATTERN
    + ")"
)


@pytest.mark.parametrize(
    ("given_value", "taken"),
    [
        (0, Decimal("0.0000")),
        (1, Decimal("1.0000")),
        (0.5, Decimal("0.5000")),
        (1.0, Decimal("1.0000")),
        (0.99999, Decimal("0.9999")),  # cut, not rounded up to 1
        (0.1, Decimal("0.1000")),  # the JSON text's 0.1, not the float's binary expansion
        (5e-324, Decimal("0.0000")),
        (-0.0, Decimal("0.0000")),
        ("0", Decimal("0.0000")),
        ("1", Decimal("1.0000")),
        ("1.0000", Decimal("1.0000")),
        ("1.00005", Decimal("1.0000")),  # past the 4th place: cut toward zero, in bounds
        ("1.000099999", Decimal("1.0000")),
        ("0.99999", Decimal("0.9999")),
        ("0.12345678901234567890123456789012345", Decimal("0.1234")),
        (None, None),
    ],
)
def test_confidence_takes_numbers_and_strings_within_its_bounds(given_value, taken):
    ok, data = verdict(confidence=given_value)
    assert ok, data
    assert data["confidence"] == taken
    if taken is not None:
        assert str(data["confidence"]) == str(taken)  # 4 places, no negative zero


@pytest.mark.parametrize(
    "given_value",
    [
        True,
        False,
        -0.5,
        1.00001,
        2,
        -1,
        float("nan"),
        float("inf"),
        "-0.5",
        "-0",
        "1.0001",
        "2",
        "",
        ".",
        ".5",
        "1.",
        "00.5",
        "+0.5",
        "5e-1",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "sNaN",
        " 0.5",
        "0.5\n",
        [],
        {},
    ],
)
def test_confidence_refuses_what_its_schema_refuses(given_value):
    ok, errors = verdict(confidence=given_value)
    assert not ok
    assert errors == {"confidence": [CONFIDENCE_REFUSAL]}


@pytest.mark.parametrize(
    ("given_value", "taken"),
    [
        (999.9999, Decimal("999.9999")),
        (-999.9999, Decimal("-999.9999")),
        (999, Decimal("999.0000")),
        (-999, Decimal("-999.0000")),
        ("999.99999", Decimal("999.9999")),
        ("-999.99999", Decimal("-999.9999")),  # toward zero: stays within the column
        ("-0.00001", Decimal("0.0000")),
        ("0.81", Decimal("0.8100")),
        ("007", Decimal("7.0000")),
    ],
)
def test_score_takes_its_column_range(given_value, taken):
    ok, data = verdict(score=given_value)
    assert ok, data
    assert str(data["score"]) == str(taken)


@pytest.mark.parametrize(
    "given_value",
    [True, 1000, -1000, 999.99991, -1000.0, "1000", "-1000.5", "1e3", "", "-", "--1", "0x10"],
)
def test_score_refuses_what_its_schema_refuses(given_value):
    ok, errors = verdict(score=given_value)
    assert not ok
    assert list(errors) == ["score"]


def test_synthesis_confidence_is_the_same_field():
    serializer = SynthesisSerializer(data={"confidence": "1.00005"})
    assert serializer.is_valid(), serializer.errors
    assert str(serializer.validated_data["confidence"]) == "1.0000"
    assert not SynthesisSerializer(data={"confidence": "-0.5"}).is_valid()


def _in_range_after_cut(text: str, low: Decimal, high: Decimal) -> bool:
    cut = Decimal(text).quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
    return low <= cut <= high


DECIMAL_TEXT = st.from_regex(r"\A-?[0-9]{1,4}(\.[0-9]{1,7})?\Z")
PLAIN = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?"  # no leading zeros


@given(DECIMAL_TEXT)
def test_the_confidence_pattern_is_the_range_after_the_cut(text):
    """Among plain decimal strings (a digit each side of any point, no leading zeros beyond one,
    no minus on zero), the pattern matches exactly those whose cut value is in [0, 1]."""
    plain = re.fullmatch(PLAIN, text) and not text.startswith("-")
    matched = re.fullmatch(CONFIDENCE_PATTERN, text) is not None
    assert matched == bool(plain and _in_range_after_cut(text, Decimal(0), Decimal(1))), text


@given(DECIMAL_TEXT.filter(lambda text: re.fullmatch(PLAIN, text) is not None))
def test_the_score_pattern_is_the_column_range_after_the_cut(text):
    """Among plain decimal strings, the pattern matches exactly those whose cut value fits the
    column (at most 3 integer digits, either sign)."""
    matched = re.fullmatch(SCORE_PATTERN, text) is not None
    in_range = _in_range_after_cut(text, Decimal("-999.9999"), Decimal("999.9999"))
    assert matched == in_range, text


def test_the_schema_states_numbers_and_strings_in_range():
    from drf_spectacular.generators import SchemaGenerator

    schemas = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    confidence = {
        "anyOf": [
            {"type": "number", "minimum": 0.0, "maximum": 1.0},
            {"type": "string", "pattern": CONFIDENCE_PATTERN},
        ],
        "nullable": True,
    }
    assert schemas["VerdictRequest"]["properties"]["confidence"] == confidence
    assert schemas["SynthesisRequest"]["properties"]["confidence"] == confidence
    assert schemas["VerdictRequest"]["properties"]["score"] == {
        "anyOf": [
            {"type": "number", "minimum": -999.9999, "maximum": 999.9999},
            {"type": "string", "pattern": SCORE_PATTERN},
        ],
        "nullable": True,
    }


@pytest.mark.django_db
def test_finalize_stores_the_cut_values_and_refuses_out_of_range_without_writing():
    document = WhitepaperDocument.objects.create(
        document_key="dec" + "0" * 37,
        source=DocumentSource.GITHUB_ISSUE,
        source_identifier="proompteng/lab#2",
    )
    run = WhitepaperAnalysisRun.objects.create(run_id="wp-dec" + "0" * 21, document=document)
    operator = APIClient()
    operator.force_authenticate(get_user_model().objects.create_superuser("dec-operator"))
    url = f"/whitepapers/runs/{run.run_id}/finalize"

    refused = operator.post(url, {"verdict": {"confidence": "-0.5"}}, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"]["details"] == {"verdict": {"confidence": [CONFIDENCE_REFUSAL]}}
    assert not hasattr(WhitepaperAnalysisRun.objects.get(pk=run.pk), "verdict")

    body = {"verdict": {"verdict": "implement", "score": "-12.345678", "confidence": "1.00005"}}
    response = operator.post(url, body, format="json")
    assert response.status_code == 200, response.json()
    stored = WhitepaperAnalysisRun.objects.get(pk=run.pk).verdict
    assert (str(stored.score), str(stored.confidence)) == ("-12.3456", "1.0000")
