"""The review committee (trading/llm/committee.py): with LLM_COMMITTEE_ENABLED the legacy review
asks each configured role once through the OpenAI-compatible test server (answers chosen by the
role the request names, so the order of calls does not matter), aggregates the votes as the
original service did, stores each vote in `llm_committee_votes`, and counts the original's
committee metrics (exact deltas read from the Prometheus registry)."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from trading.llm.committee import RoleVote, committee_aggregate
from trading.models import Execution, LLMCircuitBreaker, LLMCommitteeVote, LLMDecisionReview
from trading.services.cycle import lane_reviews_continue
from trading.services.reviews import review_run
from trading.tests.llm.answers import ROLES, asked_role, by_role, legacy_json, vote
from trading.tests.llm.test_review_cycle import _no_order, _pending_decision

pytestmark = pytest.mark.django_db

MANDATORY = ("risk_critic", "execution_critic", "policy_judge")


@pytest.fixture
def committee_settings(llm_settings):
    llm_settings.LLM_COMMITTEE_ENABLED = True
    llm_settings.LLM_COMMITTEE_ROLES = list(ROLES)
    llm_settings.LLM_COMMITTEE_MANDATORY_ROLES = list(MANDATORY)
    llm_settings.LLM_COMMITTEE_FAIL_CLOSED_VERDICT = "veto"
    return llm_settings


Names = dict[str, tuple[str, dict[str, str]]]


def read(names: Names) -> dict[str, float]:
    """Each named sample's value in the Prometheus registry (0 before its first increment)."""
    return {k: REGISTRY.get_sample_value(n, labels) or 0.0 for k, (n, labels) in names.items()}


def delta(before: dict[str, float], names: Names) -> dict[str, float]:
    after = read(names)
    return {k: after[k] - before[k] for k in names}


def test_each_role_is_asked_once_and_its_vote_stored(
    replay_settings, macd_strategy, committee_settings, llm_server,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.responder = by_role("approve")
    names: Names = {
        **{f"{r}:req": ("torghut_trading_llm_committee_requests_total", {"role": r}) for r in ROLES},
        **{
            f"{r}:approve": (
                "torghut_trading_llm_committee_verdict_total", {"role": r, "verdict": "approve"}
            )
            for r in ROLES
        },
        "approve": ("torghut_trading_llm_approve_total", {}),
        "compliant": ("torghut_trading_llm_policy_resolution_total", {"classification": "compliant"}),
        "fallback": ("torghut_trading_llm_policy_fallback_total", {}),
        "alignment": ("torghut_trading_llm_committee_veto_alignment_total", {}),
    }  # fmt: skip
    before = read(names)

    assert (review_run(review_id=review.pk).effect) == "pass"

    assert delta(before, names) == {
        **{f"{r}:req": 1.0 for r in ROLES},
        **{f"{r}:approve": 1.0 for r in ROLES},
        "approve": 1.0, "compliant": 1.0, "fallback": 0.0, "alignment": 0.0,
    }  # fmt: skip
    bodies = llm_server.completions()
    assert [asked_role(body) for body in bodies] == list(ROLES)  # one call per role, in order
    answer = json.dumps(vote("approve"))
    words = [sum(len(m["content"].split()) for m in body["messages"]) for body in bodies]
    votes = list(LLMCommitteeVote.objects.filter(review=review).order_by("pk"))
    assert [
        (v.role, v.verdict, v.confidence, v.uncertainty_band, v.rationale_short, v.error)
        for v in votes
    ] == [(r, "approve", 0.8, "low", "approve: role view", "") for r in ROLES]
    assert [(v.tokens_prompt, v.tokens_completion) for v in votes] == [
        (w, len(answer.split())) for w in words
    ]
    assert {v.response_sha256 for v in votes} == {hashlib.sha256(answer.encode()).hexdigest()}
    review.refresh_from_db()
    assert (review.verdict, review.effect, review.final_qty, review.error) == (
        "approve", "pass", Decimal(10), "",
    )  # fmt: skip
    assert (review.tokens_prompt, review.tokens_completion) == (
        sum(words), 4 * len(answer.split()),
    )  # fmt: skip
    assert review.response_json["confidence"] == 0.8
    assert [v["role"] for v in review.response_json["committee"]["votes"]] == list(ROLES)
    assert [m.get("committee_role") for m in review.prompt_json] == [
        r for r in ROLES for _ in range(2)
    ]
    assert [m["content"] for m in review.prompt_json] == [
        m["content"] for body in bodies for m in body["messages"]
    ]
    assert lane_reviews_continue(account_label="paper") == {"submitted": 1}
    assert Execution.objects.get().submitted_qty == Decimal(10)


def test_the_switch_off_asks_the_single_review_once(
    replay_settings, macd_strategy, committee_settings, llm_server,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    committee_settings.LLM_COMMITTEE_ENABLED = False
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.queue(legacy_json("approve"))
    review_run(review_id=review.pk)
    assert len(llm_server.completions()) == 1
    assert "Committee role" not in llm_server.completions()[0]["messages"][0]["content"]
    assert LLMCommitteeVote.objects.count() == 0
