"""Seeded invented answers: each states a number the decision's snapshot does not support, goes
through the review contract (`parse_review_response`), the policy and the engine's
`evidence_check` (what the legacy and DSPy active paths both run after the policy), and must be
rejected with the expected reason, leaving the deterministic order or a veto: never a larger
quantity, never the invented price. Supported answers from the same generator pass, so the test
can fail."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import pytest

from trading.llm.config import ReviewConfig
from trading.llm.engine import ReviewRun, evidence_check
from trading.llm.policy import DeterministicOrder, Posture, apply_policy
from trading.llm.schema import parse_review_response
from trading.tests.llm.answers import legacy

INVENTED_SEEDS = range(264)  # 12 kinds x 22 seeds each
SUPPORTED_SEEDS = range(1000, 1060)
BANDS_BPS = (25, 50, 100, 250, 1000)
CENT = Decimal("0.01")
P = "llm_number_unsupported:"


@dataclass(frozen=True)
class World:
    """One decision: its deterministic order and snapshot, and the band in cents."""

    order: DeterministicOrder
    snapshot: dict[str, Any]
    band_bps: Decimal
    ref_cents: int
    width_cents: int  # floor of the band's half-width, in cents (>= 1 for these prices)
    agg: int  # +1 for a buy (a higher price is more aggressive), -1 for a sell


def _world(rng: random.Random) -> World:
    side = rng.choice(("buy", "sell"))
    ref_cents = rng.randint(500, 100_000)  # 5.00 .. 1,000.00
    price = Decimal(ref_cents) * CENT
    qty = Decimal(rng.randint(2, 500))
    is_limit = rng.random() < 0.25
    order = DeterministicOrder(
        side, qty, "limit" if is_limit else "market", price if is_limit else None, price, Decimal(1)
    )
    bps = Decimal(rng.choice(BANDS_BPS))
    width = int((Decimal(ref_cents) * bps / 10_000).to_integral_value(rounding=ROUND_FLOOR))
    snapshot = {"decision": {"action": side, "qty": str(qty)}, "market": {"price": str(price)}}
    return World(order, snapshot, bps, ref_cents, width, 1 if side == "buy" else -1)


def _price(cents: int) -> Decimal:
    return Decimal(cents) * CENT


def _beyond(rng: random.Random, w: World) -> int:
    """How many cents past the band's edge."""
    return w.width_cents + rng.randint(1, w.ref_cents // 3)


def _shape(rng: random.Random, w: World, answer: dict[str, Any]) -> dict[str, Any]:
    """A verdict around the numbers: approve, or adjust with a supported smaller quantity (and,
    with a limit price, a change to a limit order: the path an invented price would take)."""
    if "adjusted_qty" in answer or ("qty_multiplier" not in answer and rng.random() < 0.5):
        smaller = rng.randint(int(w.order.qty) // 2 + 1, int(w.order.qty))
        answer.setdefault("adjusted_qty", str(smaller))
        answer["verdict"] = "adjust"
        if "limit_price" in answer and w.order.order_type == "market":
            answer["adjusted_order_type"] = "limit"
    return answer


Kind = Callable[[random.Random, World], tuple[dict[str, Any], list[str]]]


def _limit_outside_passive(rng, w):
    return {"limit_price": _price(w.ref_cents - w.agg * _beyond(rng, w))}, [
        "limit_price_outside_band"
    ]


def _limit_wrong_side(rng, w):
    return {"limit_price": _price(w.ref_cents + w.agg * rng.randint(1, w.width_cents))}, [
        "limit_price_wrong_side"
    ]


def _limit_beyond_aggressive(rng, w):
    return {"limit_price": _price(w.ref_cents + w.agg * _beyond(rng, w))}, [
        "limit_price_outside_band",
        "limit_price_wrong_side",
    ]


def _stop_outside(rng, w):
    return {"stop_price": _price(w.ref_cents - w.agg * _beyond(rng, w))}, [
        "stop_price_outside_band"
    ]


def _stop_wrong_side(rng, w):
    return {"stop_price": _price(w.ref_cents + w.agg * rng.randint(0, w.width_cents))}, [
        "stop_price_wrong_side"
    ]


def _stop_beyond_wrong(rng, w):
    return {"stop_price": _price(w.ref_cents + w.agg * _beyond(rng, w))}, [
        "stop_price_outside_band",
        "stop_price_wrong_side",
    ]


def _multiplier_above_one(rng, w):
    return {"qty_multiplier": Decimal(100 + rng.randint(1, 400)) * CENT}, [
        "qty_multiplier_above_one"
    ]


def _multiplier_inconsistent(rng, w):
    multiplier = Decimal(rng.randint(1, 100)) * CENT
    target = multiplier * w.order.qty
    choices = [a for a in range(1, int(w.order.qty) + 1) if abs(a - target) >= 1]
    return {"qty_multiplier": multiplier, "adjusted_qty": rng.choice(choices)}, [
        "qty_multiplier_inconsistent"
    ]


def _adjusted_above(rng, w):
    return {"adjusted_qty": w.order.qty + Decimal(rng.randint(1, 100_000)) * CENT}, [
        "adjusted_qty_above_deterministic"
    ]


def _multiplier_and_qty_above(rng, w):
    multiplier = Decimal(100 + rng.randint(1, 400)) * CENT
    return {"qty_multiplier": multiplier, "adjusted_qty": multiplier * w.order.qty}, [
        "qty_multiplier_above_one",
        "adjusted_qty_above_deterministic",
    ]


def _limit_without_signal_price(rng, w):
    w.snapshot["market"]["price"] = rng.choice((None, "", "0"))
    return {"limit_price": _price(w.ref_cents)}, ["limit_price_no_signal_price"]


def _stop_without_signal_price(rng, w):
    del w.snapshot["market"]["price"]
    return {"stop_price": _price(w.ref_cents - w.agg)}, ["stop_price_no_signal_price"]


KINDS: tuple[Kind, ...] = (
    _limit_outside_passive,
    _limit_wrong_side,
    _limit_beyond_aggressive,
    _stop_outside,
    _stop_wrong_side,
    _stop_beyond_wrong,
    _multiplier_above_one,
    _multiplier_inconsistent,
    _adjusted_above,
    _multiplier_and_qty_above,
    _limit_without_signal_price,
    _stop_without_signal_price,
)


def _as_json(numbers: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Numbers as a model writes them: JSON numbers or numeric strings."""
    return {k: (float(v) if rng.random() < 0.5 else str(v)) for k, v in numbers.items()}


def _judge(config: ReviewConfig, w: World, answer: dict[str, Any], fail_mode: str) -> ReviewRun:
    """What the engine does with a parsed answer: the policy, then the evidence check."""
    response, _ = parse_review_response(json.dumps(legacy(**answer)))
    posture = Posture(False, (), True, fail_mode, ())
    config = replace(config, evidence_price_band_bps=w.band_bps)
    run = ReviewRun(
        verdict=response.verdict,
        outcome=apply_policy(response, order=w.order, config=config, posture=posture),
        adjusted_qty=response.adjusted_qty,
        adjusted_order_type=response.adjusted_order_type or "",
    )
    return evidence_check(
        run, response, snapshot=w.snapshot, order=w.order, config=config, posture=posture
    )


def _invented_case(config: ReviewConfig, seed: int) -> tuple[str, list[str]]:
    """Run one invented answer; returns its kind and what was wrong with its outcome."""
    rng = random.Random(seed)
    kind = KINDS[seed % len(KINDS)]
    w = _world(rng)
    numbers, expected = kind(rng, w)
    answer = _shape(rng, w, _as_json(numbers, rng))
    fail_mode = rng.choice(("veto", "pass_through"))
    run = _judge(config, w, answer, fail_mode)
    outcome, order = run.outcome, w.order
    problems = []
    if (run.verdict, run.error_kind) != ("error", "evidence_mismatch"):
        problems.append(f"not rejected: {run.verdict} {run.error_kind}")
    if list(run.evidence_reasons) != [P + r for r in expected]:
        problems.append(f"reasons {run.evidence_reasons} != {expected}")
    if outcome.final_qty > order.qty or outcome.final_qty not in (Decimal(0), order.qty):
        problems.append(f"quantity {outcome.final_qty} of {order.qty}")
    if (outcome.order_type, outcome.limit_price) != (order.order_type, order.limit_price):
        problems.append(f"price reached the outcome: {outcome.order_type} {outcome.limit_price}")
    if fail_mode == "veto" and not outcome.vetoed:
        problems.append("veto fail mode did not veto")
    if run.adjusted_qty is not None or run.adjusted_order_type:
        problems.append("invented numbers recorded as the adjustment")
    return kind.__name__, [f"seed {seed} {kind.__name__} {answer}: {p}" for p in problems]


def test_every_invented_number_is_rejected_with_its_reason(llm_settings):
    config = ReviewConfig.current()
    kinds: Counter[str] = Counter()
    problems: list[str] = []
    for seed in INVENTED_SEEDS:
        kind, wrong = _invented_case(config, seed)
        kinds[kind] += 1
        problems.extend(wrong)
    assert problems == []
    assert sum(kinds.values()) == 264
    assert sorted(kinds.values()) == [22] * len(KINDS)


def _supported(rng: random.Random, w: World) -> dict[str, Any]:
    """Numbers the snapshot supports: a passive limit and a protective stop inside the band, a
    multiplier at most 1 with the quantity it implies (floored to the step)."""
    multiplier = Decimal(rng.randint(50, 100)) * CENT
    return {
        "limit_price": _price(w.ref_cents - w.agg * rng.randint(0, w.width_cents)),
        "stop_price": _price(w.ref_cents - w.agg * rng.randint(1, w.width_cents)),
        "qty_multiplier": multiplier,
        "adjusted_qty": (multiplier * w.order.qty).to_integral_value(rounding=ROUND_FLOOR),
    }


@pytest.mark.parametrize("seed", SUPPORTED_SEEDS)
def test_supported_numbers_pass_to_the_policy(llm_settings, seed):
    rng = random.Random(seed)
    w = _world(rng)
    numbers = _supported(rng, w)
    answer = _shape(rng, w, _as_json(numbers, rng))
    run = _judge(ReviewConfig.current(), w, answer, "veto")
    assert (run.verdict, run.error_kind, run.evidence_reasons) == ("adjust", "", ())
    assert run.outcome.effect in ("pass", "shrink")
    assert run.outcome.final_qty == numbers["adjusted_qty"] <= w.order.qty
    assert run.adjusted_qty == numbers["adjusted_qty"]
    if w.order.order_type == "market":
        assert run.outcome.limit_price == numbers["limit_price"]
