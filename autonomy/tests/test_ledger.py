"""Research-ledger invariants held by the database itself."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from autonomy.models import Promotion, ResearchCandidate, ResearchRun

pytestmark = pytest.mark.django_db


def _candidate(n: int = 1, **fields) -> ResearchCandidate:
    run = ResearchRun.objects.create(run_id=f"run{n:021d}")
    values = {
        "run": run,
        "candidate_id": f"cand-{n:012d}",
        "candidate_hash": "h" * 64,
        "strategy_name": "legacy-macd-rsi-v3",
        "strategy_type": "legacy_macd_rsi",
        "promotion_target": "paper",
        **fields,
    }
    return ResearchCandidate.objects.create(**values)


def test_promotions_are_append_only():
    candidate = _candidate()
    promotion = Promotion.objects.create(
        candidate=candidate,
        requested_mode="paper",
        approved_mode="paper",
        decision_action="promote",
        approver="alice",
        reason="gates passed, reviewed the folds",
    )
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        Promotion.objects.filter(pk=promotion.pk).update(reason="rewritten")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        Promotion.objects.filter(pk=promotion.pk).delete()
    promotion.refresh_from_db()
    assert promotion.reason == "gates passed, reviewed the folds"
    assert Promotion.objects.count() == 1


def test_a_promotion_beyond_shadow_needs_an_approver():
    candidate = _candidate()
    with pytest.raises(IntegrityError, match="research_promo_needs_approver"), transaction.atomic():
        Promotion.objects.create(
            candidate=candidate,
            requested_mode="paper",
            approved_mode="paper",
            decision_action="promote",
        )
    shadow = Promotion.objects.create(
        candidate=candidate,
        requested_mode="shadow",
        approved_mode="shadow",
        decision_action="promote",
    )
    assert shadow.approver == ""
    assert Promotion.objects.count() == 1


def test_one_champion_per_strategy():
    _candidate(1, lifecycle_role="champion", lifecycle_status="active")
    with (
        pytest.raises(IntegrityError, match="research_one_champion_per_strategy"),
        transaction.atomic(),
    ):
        _candidate(2, lifecycle_role="champion", lifecycle_status="active")
    other = _candidate(3, lifecycle_role="champion", strategy_name="intraday-tsmom")
    assert other.lifecycle_role == "champion"
