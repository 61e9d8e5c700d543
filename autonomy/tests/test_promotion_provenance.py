"""A promotion writes its provenance on the strategy row (the `research_promotions` row id and the
candidate id); a rollback puts back the provenance the row had; a demotion keeps it (the row is
off); the readiness dry runs leave none behind."""

from __future__ import annotations

import pytest

from autonomy.models import Promotion, ResearchCandidate
from autonomy.services.promotion import promotion_approve, promotion_demote, promotion_rollback
from autonomy.services.strategies import PromotionError, strategy_apply
from autonomy.tests.test_promotion import STRATEGY, approver
from trading.models import Strategy

pytestmark = pytest.mark.django_db


@pytest.fixture
def candidate(run_lane_cmd) -> ResearchCandidate:
    return ResearchCandidate.objects.get(candidate_id=run_lane_cmd()["candidate_id"])


def _provenance() -> tuple[str, int | None, str]:
    row = Strategy.objects.get(name=STRATEGY)
    return row.source, row.promotion_ref, row.promotion_candidate_id


def test_promotion_and_rollback_carry_the_provenance(candidate, run_lane_cmd, tmp_path):
    alice = approver()
    Strategy.objects.create(
        name=STRATEGY, strategy_type="legacy_macd_rsi", enabled=True, source="catalog"
    )
    first = promotion_approve(candidate=candidate, mode="paper", actor=alice, reason="a").promotion
    assert _provenance() == ("promotion", first.pk, candidate.candidate_id)
    # the promotion's snapshot of the row before it: the catalog row, no provenance
    before = first.evidence_bundle["previous_strategy"]
    assert (before["source"], before["promotion_ref"], before["promotion_candidate_id"]) == (
        "catalog",
        None,
        "",
    )

    other = tmp_path / "other.yaml"
    other.write_text(
        "strategies:\n  - name: legacy-macd-rsi-v3\n    type: legacy_macd_rsi\n"
        "    enabled: true\n    params: {buy_rsi_threshold: 40, sell_rsi_threshold: 60}\n"
    )
    second = ResearchCandidate.objects.get(
        candidate_id=run_lane_cmd(strategy=other, out=tmp_path / "second")["candidate_id"]
    )
    # its readiness dry run applied and restored the promoted row: restored exactly, provenance
    # included
    assert second.run.readiness["gitopsRevertDryRunPassed"] is True
    promo = promotion_approve(candidate=second, mode="paper", actor=alice, reason="b").promotion
    assert _provenance() == ("promotion", promo.pk, second.candidate_id)

    promotion_rollback(candidate=second, actor=alice, reason="worse")
    assert _provenance() == ("promotion", first.pk, candidate.candidate_id)
    promotion_rollback(candidate=candidate, actor=alice, reason="back to the catalog row")
    assert _provenance() == ("catalog", None, "")


def test_a_retried_promotion_keeps_the_first_rows_provenance(candidate):
    alice = approver()
    first = promotion_approve(candidate=candidate, mode="paper", actor=alice, reason="a")
    again = promotion_approve(candidate=candidate, mode="paper", actor=alice, reason="a")
    assert (again.created, again.promotion.pk) == (False, first.promotion.pk)
    assert _provenance() == ("promotion", first.promotion.pk, candidate.candidate_id)
    assert Promotion.objects.filter(decision_action="promote").count() == 1


def test_a_demoted_strategy_is_off_and_keeps_its_provenance(candidate):
    alice = approver()
    promo = promotion_approve(candidate=candidate, mode="paper", actor=alice, reason="a").promotion
    promotion_demote(candidate=candidate, actor=alice, reason="drift")
    row = Strategy.objects.get(name=STRATEGY)
    assert (row.enabled, row.promotion_ref, row.promotion_candidate_id) == (
        False,
        promo.pk,
        candidate.candidate_id,
    )


def test_readiness_dry_runs_leave_no_provenance(candidate):
    # the lane's readiness probe applied and restored the strategy inside rolled-back
    # transactions: nothing of it is left
    assert not Strategy.objects.filter(name=STRATEGY).exists()
    readiness = candidate.run.readiness
    assert (readiness["strategyDisableDryRunPassed"], readiness["gitopsRevertDryRunPassed"]) == (
        True,
        True,
    )


def test_apply_refuses_half_a_provenance():
    spec = {"name": STRATEGY, "strategy_type": "legacy_macd_rsi"}
    with pytest.raises(PromotionError) as exc:
        strategy_apply(spec, account_labels=["paper"], promotion_ref=5)
    assert exc.value.code == "provenance_incomplete"
    with pytest.raises(PromotionError):
        strategy_apply(spec, account_labels=["paper"], candidate_id="cand-0123456789ab")
    assert not Strategy.objects.filter(name=STRATEGY).exists()
