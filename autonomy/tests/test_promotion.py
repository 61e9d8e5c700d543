"""Promotion actions: human approval, paper lane enablement, live guards, demote and rollback."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User

from autonomy.models import CandidateStage, Promotion, ResearchCandidate
from autonomy.services.promotion import (
    promotion_approve,
    promotion_demote,
    promotion_deny,
    promotion_rollback,
)
from autonomy.services.strategies import PromotionError
from trading.models import Strategy
from trading.services.decisions import strategy_spec

pytestmark = pytest.mark.django_db

STRATEGY = "legacy-macd-rsi-v3"


def approver(name: str = "alice", *, live: bool = False) -> User:
    user = User.objects.create_user(name, password="x")
    codes = ["approve_promotion"] + (["approve_live_promotion"] if live else [])
    user.user_permissions.add(*Permission.objects.filter(codename__in=codes))
    return User.objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def candidate(run_lane_cmd) -> ResearchCandidate:
    summary = run_lane_cmd()
    return ResearchCandidate.objects.get(candidate_id=summary["candidate_id"])


def test_paper_promotion_enables_the_strategy_for_the_paper_lane(candidate):
    alice = approver()
    result = promotion_approve(candidate=candidate, mode="paper", actor=alice, reason="reviewed")
    assert result.created is True
    strategy = Strategy.objects.get(name=STRATEGY)
    assert (strategy.enabled, strategy.account_labels, strategy.source) == (
        True,
        ["paper"],
        "promotion",
    )
    assert (str(strategy.max_notional_per_trade), str(strategy.max_position_pct_equity)) == (
        "250.000000",
        "0.025000",
    )
    assert strategy.params == {"buy_rsi_threshold": 35, "sell_rsi_threshold": 65, "qty": 1}
    assert strategy.uncertainty_action == "pass"  # the sample run's gate 7
    candidate.refresh_from_db()
    assert (candidate.lifecycle_role, candidate.lifecycle_status) == ("champion", "active")
    promo = result.promotion
    assert (promo.decision_action, promo.approved_mode, promo.approver, promo.account_label) == (
        "promote",
        "paper",
        "alice",
        "paper",
    )
    assert promo.evidence_bundle["previous_strategy"] is None
    assert promo.recommendation_trace_id == candidate.run.recommendation_trace_id
    assert CandidateStage.objects.get(candidate_id=candidate.candidate_id).active_stage == (
        "shadow-paper"
    )
    # a retry changes nothing and returns the same row
    again = promotion_approve(candidate=candidate, mode="paper", actor=alice, reason="reviewed")
    assert (again.created, again.promotion.pk) == (False, promo.pk)
    assert list(Promotion.objects.order_by("pk").values_list("decision_action", flat=True)) == [
        "hold",
        "promote",
    ]


@pytest.mark.parametrize(
    ("who", "reason", "code"),
    [
        ("anonymous", "ok", "approver_required"),
        ("no-perm", "ok", "permission_denied"),
        ("alice", "  ", "reason_required"),
    ],
)
def test_refused_promotions_change_nothing(candidate, who, reason, code):
    actor = None
    if who == "no-perm":
        actor = User.objects.create_user("bob", password="x")
    elif who == "alice":
        actor = approver()
    with pytest.raises(PromotionError) as exc:
        promotion_approve(candidate=candidate, mode="paper", actor=actor, reason=reason)
    assert exc.value.code == code
    assert list(Promotion.objects.values_list("decision_action", flat=True)) == ["hold"]
    assert not Strategy.objects.filter(name=STRATEGY).exists()
    candidate.refresh_from_db()
    assert candidate.lifecycle_role == "challenger"


def test_a_run_that_does_not_recommend_paper_cannot_be_promoted(run_lane_cmd):
    shadow = run_lane_cmd("--promotion-target", "shadow")
    cand = ResearchCandidate.objects.get(candidate_id=shadow["candidate_id"])
    with pytest.raises(PromotionError) as exc:
        promotion_approve(candidate=cand, mode="paper", actor=approver(), reason="try")
    assert exc.value.code == "mode_not_recommended"
    assert not Strategy.objects.filter(name=STRATEGY).exists()


def test_live_needs_live_enablement_a_live_gate_pass_and_a_recorded_approval(
    run_lane_cmd, settings, tmp_path
):
    import json

    from tests.conftest import live_approval_granted

    from .conftest import SAMPLE_POLICY

    live_lane = {**settings.TRADING_LANES[0], "label": "live-1", "mode": "live"}
    settings.TRADING_LANES = [*settings.TRADING_LANES, live_lane]
    settings.TRADING_AUTONOMY_APPROVAL_TOKEN = "tok-123"
    policy = tmp_path / "live-policy.json"
    policy.write_text(
        json.dumps({**json.loads(SAMPLE_POLICY.read_text()), "gate5_live_enabled": True})
    )
    summary = run_lane_cmd(
        "--promotion-target", "live", "--approval-token", "tok-123", policy=policy
    )
    assert (summary["recommended_mode"], summary["eligible"]) == ("live", True)
    cand = ResearchCandidate.objects.get(candidate_id=summary["candidate_id"])
    carol = approver("carol", live=True)

    def refused(code: str) -> None:
        with pytest.raises(PromotionError) as exc:
            promotion_approve(candidate=cand, mode="live", actor=carol, reason="go live")
        assert exc.value.code == code
        assert "live-1" not in Strategy.objects.get(name=STRATEGY).account_labels

    promotion_approve(candidate=cand, mode="paper", actor=carol, reason="paper first")
    settings.TRADING_LIVE_ENABLED = False
    refused("live_disabled")
    settings.TRADING_LIVE_ENABLED = True
    refused("live_approval_missing")
    live_approval_granted("live-1")
    promo = promotion_approve(candidate=cand, mode="live", actor=carol, reason="go live").promotion
    assert (promo.approved_mode, promo.account_label, promo.approver) == ("live", "live-1", "carol")
    assert Strategy.objects.get(name=STRATEGY).account_labels == ["live-1", "paper"]
    assert CandidateStage.objects.get(candidate_id=cand.candidate_id).active_stage == "live-ramp"


def test_a_wrong_approval_token_never_passes_the_live_gate(run_lane_cmd, settings, tmp_path):
    import json

    from .conftest import SAMPLE_POLICY

    settings.TRADING_AUTONOMY_APPROVAL_TOKEN = "tok-123"
    policy = tmp_path / "live-policy.json"
    policy.write_text(
        json.dumps({**json.loads(SAMPLE_POLICY.read_text()), "gate5_live_enabled": True})
    )
    summary = run_lane_cmd(
        "--promotion-target", "live", "--approval-token", "tok-124", policy=policy
    )
    assert summary["recommended_mode"] == "paper"


def test_live_needs_the_live_permission(candidate):
    alice = approver()  # paper approver only
    with pytest.raises(PromotionError) as exc:
        promotion_approve(candidate=candidate, mode="live", actor=alice, reason="go live")
    assert exc.value.code == "permission_denied"


def test_deny_is_recorded_and_leaves_the_candidate_as_it_was(candidate):
    promo = promotion_deny(candidate=candidate, mode="paper", actor=approver(), reason="thin data")
    assert (promo.decision_action, promo.approver, promo.reason) == ("deny", "alice", "thin data")
    candidate.refresh_from_db()
    assert candidate.lifecycle_role == "challenger"
    assert not Strategy.objects.filter(name=STRATEGY).exists()


def test_demote_disables_the_strategy(candidate):
    alice = approver()
    promotion_approve(candidate=candidate, mode="paper", actor=alice, reason="ok")
    demotion = promotion_demote(candidate=candidate, actor=alice, reason="drawdown")
    assert demotion.decision_action == "demote"
    assert Strategy.objects.get(name=STRATEGY).enabled is False
    candidate.refresh_from_db()
    assert (candidate.lifecycle_role, candidate.lifecycle_status) == ("demoted", "standby")
    assert CandidateStage.objects.get(candidate_id=candidate.candidate_id).active_stage == (
        "incident-recovery"
    )
    with pytest.raises(PromotionError) as exc:
        promotion_rollback(candidate=candidate, actor=alice, reason="again")
    assert exc.value.code == "not_champion"


def test_rollback_restores_the_previous_strategy_and_champion(candidate, run_lane_cmd, tmp_path):
    alice = approver()
    Strategy.objects.create(
        name=STRATEGY,
        strategy_type="legacy_macd_rsi",
        enabled=True,
        params={"buy_rsi_threshold": 30},
        account_labels=["paper"],
        source="catalog",
    )
    promotion_approve(candidate=candidate, mode="paper", actor=alice, reason="first")
    # a second candidate for the same strategy (other params) replaces the first champion
    other = tmp_path / "other.yaml"
    other.write_text(
        "strategies:\n  - name: legacy-macd-rsi-v3\n    type: legacy_macd_rsi\n"
        "    enabled: true\n    params: {buy_rsi_threshold: 40, sell_rsi_threshold: 60}\n"
    )
    second = ResearchCandidate.objects.get(
        candidate_id=run_lane_cmd(strategy=other, out=tmp_path / "second")["candidate_id"]
    )
    promo = promotion_approve(
        candidate=second, mode="paper", actor=alice, reason="better"
    ).promotion
    assert promo.rollback_candidate_id == candidate.candidate_id
    candidate.refresh_from_db()
    assert candidate.lifecycle_role == "demoted"
    assert Strategy.objects.get(name=STRATEGY).params == {
        "buy_rsi_threshold": 40,
        "sell_rsi_threshold": 60,
    }

    rollback = promotion_rollback(candidate=second, actor=alice, reason="worse live")
    assert (rollback.decision_action, rollback.rollback_candidate_id) == (
        "rollback",
        candidate.candidate_id,
    )
    strategy = Strategy.objects.get(name=STRATEGY)
    # back to what the first promotion left: the first candidate's parameters, enabled
    assert strategy.params == {"buy_rsi_threshold": 35, "sell_rsi_threshold": 65, "qty": 1}
    assert strategy.enabled is True
    candidate.refresh_from_db()
    second.refresh_from_db()
    assert (candidate.lifecycle_role, second.lifecycle_role) == ("champion", "demoted")
    assert list(Promotion.objects.order_by("pk").values_list("decision_action", flat=True)) == [
        "hold",
        "promote",
        "hold",
        "promote",
        "rollback",
    ]


def _set_gate7_action(candidate: ResearchCandidate, action: str) -> None:
    """The run's recorded gate-7 result, as the gate matrix writes it, with `action`."""
    run = candidate.run
    report = dict(run.gate_report)
    report["gates"] = [
        {**g, "details": {**g.get("details", {}), "action": action}}
        if g.get("gate") == "gate7"
        else g
        for g in report["gates"]
    ]
    report["uncertainty_action"] = action
    run.gate_report = report
    run.save(update_fields=["gate_report"])


def test_promotion_writes_the_runs_gate7_uncertainty_action(candidate):
    gate7 = next(g for g in candidate.run.gate_report["gates"] if g["gate"] == "gate7")
    assert gate7["details"]["action"] == "pass"
    _set_gate7_action(candidate, "degrade")
    promotion_approve(candidate=candidate, mode="paper", actor=approver(), reason="ok")
    strategy = Strategy.objects.get(name=STRATEGY)
    assert (strategy.enabled, strategy.uncertainty_action) == (True, "degrade")
    assert strategy_spec(strategy).uncertainty_action == "degrade"


def test_promotion_refuses_a_gate_report_without_a_valid_uncertainty_action(candidate):
    _set_gate7_action(candidate, "maybe")
    with pytest.raises(PromotionError) as exc:
        promotion_approve(candidate=candidate, mode="paper", actor=approver(), reason="ok")
    assert exc.value.code == "uncertainty_action_missing"
    assert not Strategy.objects.filter(name=STRATEGY).exists()
    assert list(Promotion.objects.values_list("decision_action", flat=True)) == ["hold"]


def test_rollback_restores_the_uncertainty_action_the_row_had(candidate, run_lane_cmd, tmp_path):
    alice = approver()
    Strategy.objects.create(
        name=STRATEGY,
        strategy_type="legacy_macd_rsi",
        enabled=True,
        account_labels=["paper"],
        source="catalog",
        uncertainty_action="abstain",
    )
    _set_gate7_action(candidate, "degrade")
    promotion_approve(candidate=candidate, mode="paper", actor=alice, reason="first")
    assert Strategy.objects.get(name=STRATEGY).uncertainty_action == "degrade"
    other = tmp_path / "other.yaml"
    other.write_text(
        "strategies:\n  - name: legacy-macd-rsi-v3\n    type: legacy_macd_rsi\n"
        "    enabled: true\n    params: {buy_rsi_threshold: 40, sell_rsi_threshold: 60}\n"
    )
    second = ResearchCandidate.objects.get(
        candidate_id=run_lane_cmd(strategy=other, out=tmp_path / "second")["candidate_id"]
    )
    promotion_approve(candidate=second, mode="paper", actor=alice, reason="better")
    assert Strategy.objects.get(name=STRATEGY).uncertainty_action == "pass"
    promotion_rollback(candidate=second, actor=alice, reason="worse")
    assert Strategy.objects.get(name=STRATEGY).uncertainty_action == "degrade"
    promotion_rollback(candidate=candidate, actor=alice, reason="back to the catalog row")
    assert Strategy.objects.get(name=STRATEGY).uncertainty_action == "abstain"
