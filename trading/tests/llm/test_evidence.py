"""Numbers the reviewer states, checked against the decision's snapshot (trading/llm/evidence.py):
exact reason lists for each check, and the outcome of a rejected answer."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from trading.llm.evidence import check_numbers, evidence_outcome, price_band, signal_price
from trading.llm.policy import DeterministicOrder
from trading.llm.schema import ReviewResponse, validate_dspy_output
from trading.tests.llm.answers import committee, legacy

BAND = Decimal(100)  # 1 % around the signal price
SNAPSHOT: dict[str, Any] = {"market": {"symbol": "AAPL", "price": "100.00"}}
BUY = DeterministicOrder("buy", Decimal(10), "market", None, Decimal("100.00"), Decimal(1))
SELL = DeterministicOrder("sell", Decimal(10), "market", None, Decimal("100.00"), Decimal(1))
P = "llm_number_unsupported:"


def _answer(verdict: str = "approve", **numbers: Any) -> ReviewResponse:
    return ReviewResponse.model_validate(legacy(verdict, **numbers))


def test_the_band_is_the_signal_price_plus_minus_the_basis_points():
    band = price_band(SNAPSHOT, BAND)
    assert band is not None
    assert (band.reference, band.low, band.high) == (
        Decimal("100.00"),
        Decimal("99.0000"),
        Decimal("101.0000"),
    )
    wide = price_band(SNAPSHOT, Decimal(5000))
    assert wide is not None and (wide.low, wide.high) == (Decimal("50.0000"), Decimal("150.0000"))


@pytest.mark.parametrize(
    "market",
    [{}, {"price": None}, {"price": "abc"}, {"price": "0"}, {"price": "-3"}, {"price": "NaN"}],
)
def test_a_snapshot_without_a_usable_signal_price_has_none(market):
    assert signal_price({"market": market}) is None
    assert signal_price({}) is None


@pytest.mark.parametrize(
    ("order", "numbers", "reasons"),
    [
        (BUY, {}, []),
        (BUY, {"limit_price": "99.00"}, []),  # the band's bottom, passive
        (BUY, {"limit_price": "100.00"}, []),  # at the signal price
        (BUY, {"limit_price": "98.99"}, ["limit_price_outside_band"]),
        (BUY, {"limit_price": "100.01"}, ["limit_price_wrong_side"]),
        (BUY, {"limit_price": "101.01"}, ["limit_price_outside_band", "limit_price_wrong_side"]),
        (SELL, {"limit_price": "101.00"}, []),
        (SELL, {"limit_price": "99.99"}, ["limit_price_wrong_side"]),
        (SELL, {"limit_price": "101.01"}, ["limit_price_outside_band"]),
        (BUY, {"stop_price": "99.00"}, []),
        (BUY, {"stop_price": "100.00"}, ["stop_price_wrong_side"]),  # a stop at entry
        (BUY, {"stop_price": "98.99"}, ["stop_price_outside_band"]),
        (BUY, {"stop_price": "100.50"}, ["stop_price_wrong_side"]),
        (SELL, {"stop_price": "101.00"}, []),
        (SELL, {"stop_price": "99.50"}, ["stop_price_wrong_side"]),
        (SELL, {"stop_price": "130"}, ["stop_price_outside_band"]),
        (BUY, {"qty_multiplier": "1"}, []),
        (BUY, {"qty_multiplier": "1.01"}, ["qty_multiplier_above_one"]),
        (BUY, {"adjusted_qty": "10"}, []),
        (BUY, {"adjusted_qty": "10.5"}, ["adjusted_qty_above_deterministic"]),
        (BUY, {"adjusted_qty": "7", "qty_multiplier": "0.79"}, []),  # 7.9 floored to the step
        (BUY, {"adjusted_qty": "6", "qty_multiplier": "0.7"}, ["qty_multiplier_inconsistent"]),
        (BUY, {"adjusted_qty": "8", "qty_multiplier": "0.7"}, ["qty_multiplier_inconsistent"]),
        (
            BUY,
            {"adjusted_qty": "20", "qty_multiplier": "2"},
            ["qty_multiplier_above_one", "adjusted_qty_above_deterministic"],
        ),
        (
            BUY,
            {"adjusted_qty": "12", "qty_multiplier": "0.5", "limit_price": "105"},
            [
                "adjusted_qty_above_deterministic",
                "qty_multiplier_inconsistent",
                "limit_price_outside_band",
                "limit_price_wrong_side",
            ],
        ),
    ],
)
def test_each_stated_number_is_checked_against_the_snapshot(order, numbers, reasons):
    response = _answer("adjust" if "adjusted_qty" in numbers else "approve", **numbers)
    assert check_numbers(response, order, SNAPSHOT, BAND) == [P + r for r in reasons]


def test_a_price_with_nothing_to_check_it_against_is_unsupported():
    response = _answer(limit_price="99.5", stop_price="99")
    no_price = {"market": {"symbol": "AAPL", "price": None}}
    assert check_numbers(response, BUY, no_price, BAND) == [
        P + "limit_price_no_signal_price",
        P + "stop_price_no_signal_price",
    ]
    # quantities are checked against the deterministic order, which is always there
    assert check_numbers(_answer(qty_multiplier="0.5"), BUY, no_price, BAND) == []


def test_the_band_decides_what_a_price_may_be():
    response = _answer(limit_price="99.20")
    assert check_numbers(response, BUY, SNAPSHOT, Decimal(100)) == []
    assert check_numbers(response, BUY, SNAPSHOT, Decimal(50)) == [P + "limit_price_outside_band"]


def test_a_verdict_does_not_excuse_its_numbers():
    response = _answer("veto", limit_price="80")
    assert check_numbers(response, BUY, SNAPSHOT, BAND) == [P + "limit_price_outside_band"]


def _dspy(**overrides: Any) -> dict[str, Any]:
    members = [
        {
            "role": m["role"],
            "verdict": m["verdict"],
            "confidence": m["confidence"],
            "uncertaintyBand": m["uncertainty_band"],
            "rationaleShort": m["rationale_short"],
        }
        for m in committee("approve")
    ]
    return {"verdict": "approve", "confidence": 0.8, "rationale": "ok", "committee": members}


def test_dspy_numbers_and_each_committee_members_numbers_are_checked():
    data = _dspy()
    data.update(qtyMultiplier="1.5", stopPrice="97")
    data["committee"][1].update(limitPrice="100.5", adjustedQty="4", qtyMultiplier="0.4")
    data["committee"][2].update(stopPrice="100", adjustedQty="11")
    output = validate_dspy_output(data)
    assert check_numbers(output, BUY, SNAPSHOT, BAND) == [
        P + "qty_multiplier_above_one",
        P + "stop_price_outside_band",
        P + "risk_critic.limit_price_wrong_side",
        P + "execution_critic.adjusted_qty_above_deterministic",
        P + "execution_critic.stop_price_wrong_side",
    ]
    # the numbers reach the review contract the policy reads, and the stored contract
    response = output.to_review_response()
    assert (response.qty_multiplier, response.stop_price) == (Decimal("1.5"), Decimal(97))
    contract = output.as_contract()
    assert (contract["qtyMultiplier"], contract["stopPrice"]) == ("1.5", "97")
    assert contract["committee"][1]["limitPrice"] == "100.5"
    assert "limitPrice" not in contract["committee"][0]


def test_an_answer_without_the_new_numbers_keeps_its_contract_shape():
    contract = validate_dspy_output(_dspy()).as_contract()
    assert "qtyMultiplier" not in contract and "stopPrice" not in contract
    assert sorted(contract["committee"][0]) == [
        "confidence",
        "rationaleShort",
        "requiredChecks",
        "riskFlags",
        "role",
        "uncertaintyBand",
        "verdict",
    ]


@pytest.mark.parametrize("number", ["0", "-1"])
def test_the_schema_requires_positive_numbers(number):
    from pydantic import ValidationError

    for name in ("qty_multiplier", "stop_price"):
        with pytest.raises(ValidationError):
            _answer(**{name: number})


def test_a_rejected_answer_takes_the_fail_mode_with_every_reason():
    limit = DeterministicOrder("buy", Decimal(10), "limit", Decimal(100), Decimal(100), Decimal(1))
    reasons = [P + "limit_price_outside_band", P + "limit_price_wrong_side"]
    veto = evidence_outcome(limit, fail_mode="veto", reasons=reasons)
    assert (veto.effect, veto.final_qty, veto.order_type, veto.limit_price, veto.reasons) == (
        "veto",
        Decimal(0),
        "limit",
        Decimal(100),
        tuple(reasons),
    )
    passed = evidence_outcome(limit, fail_mode="pass_through", reasons=reasons)
    assert (passed.effect, passed.final_qty, passed.limit_price, passed.reasons) == (
        "pass",
        Decimal(10),
        Decimal(100),
        tuple(f"{r}_pass_through" for r in reasons),
    )
