"""The review committee (trading/llm/committee.py): with LLM_COMMITTEE_ENABLED the legacy review
asks each configured role once through the OpenAI-compatible test server (answers chosen by the
role the request names, so the order of calls does not matter), aggregates the votes as the
original service did, stores each vote in `llm_committee_votes`, and counts the original's
committee metrics (exact deltas read from the Prometheus registry)."""

from __future__ import annotations

import hashlib
import json
import time
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from trading.llm.committee import (
    RoleVote,
    committee_aggregate,
    committee_budget_messages,
    committee_run,
)
from trading.llm.config import ReviewConfig
from trading.models import (
    Execution,
    LLMCircuitBreaker,
    LLMCommitteeVote,
    LLMDecisionReview,
    LLMSpendReservation,
)
from trading.services.cycle import lane_reviews_continue
from trading.services.llm_budget import cost_usd, estimate_prompt_tokens
from trading.services.reviews import review_run
from trading.tests.llm.answers import ROLES, asked_role, by_role, legacy_json, vote
from trading.tests.llm.test_llm_budget import _clones, _spend
from trading.tests.llm.test_review_cycle import _cycle, _no_order, _pending_decision, _start

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
    stored = review.response_json or {}
    assert stored["confidence"] == 0.8
    assert [v["role"] for v in stored["committee"]["votes"]] == list(ROLES)
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


def _vote(role: str, verdict: str, **fields: object) -> RoleVote:
    base: dict[str, object] = {"confidence": 0.8, "uncertainty_band": "low"}
    return RoleVote(role=role, verdict=verdict, rationale_short="r", **{**base, **fields})  # type: ignore[arg-type]


def _votes(default: str = "approve", **by: str) -> list[RoleVote]:
    return [_vote(r, by.get(r, default)) for r in ROLES]


LIMIT_NO_PRICE = {"adjusted_qty": Decimal(5), "adjusted_order_type": "limit"}


@pytest.mark.parametrize(
    ("votes", "fail_closed", "expected"),
    [
        (_votes(), "veto", ("approve", 0.8, "low")),
        (_votes(risk_critic="veto"), "veto", ("veto", 1.0, "low")),
        (_votes(researcher="veto"), "veto", ("approve", 0.8, "low")),  # not mandatory
        (_votes("veto", researcher="approve", **dict.fromkeys(MANDATORY, "approve")), "abstain",
         ("approve", 0.8, "low")),
        (_votes(researcher="escalate", risk_critic="abstain"), "veto", ("escalate", 0.8, "low")),
        (_votes(researcher="abstain", policy_judge="adjust"), "veto", ("veto", 0.8, "low")),
        (_votes(researcher="abstain"), "abstain", ("abstain", 0.8, "low")),
        ([_vote("researcher", "veto")], "abstain", ("veto", 1.0, "low")),  # mandatory missing
        ([_vote("researcher", "approve"), *(_vote(r, "approve") for r in MANDATORY[:2])],
         "abstain", ("veto", 1.0, "low")),  # policy_judge missing
        ([_vote("researcher", "adjust", adjusted_qty=Decimal(5)),
          *(_vote(r, "approve") for r in MANDATORY)], "veto", ("adjust", 0.8, "low")),
        ([_vote("researcher", "adjust"), *(_vote(r, "approve") for r in MANDATORY)], "abstain",
         ("abstain", 0.8, "low")),  # adjust without a quantity
        ([_vote("researcher", "adjust", **LIMIT_NO_PRICE),
          *(_vote(r, "approve") for r in MANDATORY)], "veto", ("veto", 0.8, "low")),
        ([_vote("researcher", "approve", confidence=0.2, uncertainty_band="high"),
          _vote("risk_critic", "approve", confidence=0.6, uncertainty_band="medium"),
          *(_vote(r, "approve", confidence=1.0) for r in MANDATORY[1:])], "veto",
         ("approve", 0.7, "high")),
    ],
)  # fmt: skip
def test_the_votes_aggregate_as_the_original_committee(votes, fail_closed, expected):
    answer = committee_aggregate(votes, mandatory_roles=MANDATORY, fail_closed=fail_closed)
    assert (answer["verdict"], answer["confidence"], answer["uncertainty"]["band"]) == expected
    probabilities = answer["calibrated_probabilities"]
    assert probabilities[answer["verdict"]] == answer["confidence"]
    assert abs(sum(probabilities.values()) - 1.0) < 1e-9
    if answer["verdict"] == "veto" and answer["confidence"] == 1.0:
        assert "mandatory_committee_veto" in answer["risk_flags"]
    if answer["verdict"] == "adjust":
        assert (answer["adjusted_qty"], answer["adjusted_order_type"]) == ("5", None)
    if answer["verdict"] == "escalate":
        assert answer["escalate_reason"] == "committee_requested_escalation"


def _error_names(role: str) -> Names:
    return {
        "schema": ("torghut_trading_llm_committee_schema_error_total", {"role": role}),
        "parse": ("torghut_trading_llm_parse_error_total", {}),
        "validation": ("torghut_trading_llm_validation_error_total", {}),
        "veto": ("torghut_trading_llm_committee_veto_total", {"role": role}),
        "alignment": ("torghut_trading_llm_committee_veto_alignment_total", {}),
    }


@pytest.mark.parametrize(
    ("fail_closed", "verdict", "effect", "reasons", "vetoes"),
    [("veto", "veto", "veto", ["llm_veto"], 1.0), ("abstain", "abstain", "pass", ["llm_abstain"], 0.0)],
)  # fmt: skip
def test_a_mandatory_role_outside_the_contract_counts_as_the_fail_closed_verdict(
    replay_settings, macd_strategy, committee_settings, llm_server,
    django_capture_on_commit_callbacks, fail_closed, verdict, effect, reasons, vetoes,
):  # fmt: skip
    committee_settings.LLM_COMMITTEE_FAIL_CLOSED_VERDICT = fail_closed
    committee_settings.LLM_ABSTAIN_FAIL_MODE = "pass_through"
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.responder = by_role("approve", risk_critic="the downside looks fine to me")
    names = _error_names("risk_critic")
    before = read(names)
    review_run(review_id=review.pk)
    assert delta(before, names) == {
        "schema": 1.0, "parse": 1.0, "validation": 0.0, "veto": vetoes, "alignment": vetoes,
    }  # fmt: skip
    review.refresh_from_db()
    assert (review.verdict, review.effect, review.reasons) == (verdict, effect, reasons)
    assert review.error.startswith("committee_role_error: risk_critic parse_error: not JSON")
    risk = LLMCommitteeVote.objects.get(review=review, role="risk_critic")
    assert (risk.verdict, risk.confidence, risk.uncertainty_band, risk.rationale_short) == (
        fail_closed, 0.0, "high", "committee_role_error:parse_error",
    )  # fmt: skip
    assert risk.error.startswith("parse_error: not JSON")
    assert risk.response_sha256 == hashlib.sha256(b"the downside looks fine to me").hexdigest()
    assert LLMCommitteeVote.objects.filter(review=review, error="").count() == 3
    assert len(LLMCircuitBreaker.objects.get().error_times) == 1  # one error per review
    result = lane_reviews_continue(account_label="paper")
    assert result == ({"rejected": 1} if effect == "veto" else {"submitted": 1})
    if effect == "veto":
        _no_order()


@pytest.mark.parametrize(
    ("max_band", "effect", "reasons"),
    [("medium", "veto", ["llm_uncertainty_band_above_maximum"]), ("high", "pass", [])],
)
def test_a_non_mandatory_role_outside_the_contract_raises_the_uncertainty_only(
    replay_settings, macd_strategy, committee_settings, llm_server,
    django_capture_on_commit_callbacks, max_band, effect, reasons,
):  # fmt: skip
    committee_settings.LLM_MAX_UNCERTAINTY_BAND = max_band
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.responder = by_role("approve", researcher=vote("approve", confidence=2))
    names = _error_names("researcher")
    before = read(names)
    review_run(review_id=review.pk)
    assert delta(before, names) == {
        "schema": 1.0, "parse": 0.0, "validation": 1.0, "veto": 1.0, "alignment": 0.0,
    }  # fmt: skip
    review.refresh_from_db()
    # the error vote (veto, confidence 0, uncertainty high) is not mandatory: the verdict stays
    # approve with confidence mean(0, 0.8, 0.8, 0.8) = 0.6 and the highest band, high, which the
    # quality limits then judge
    assert (review.verdict, review.effect, review.reasons, review.confidence) == (
        "approve", effect, reasons, 0.6,
    )  # fmt: skip
    researcher = LLMCommitteeVote.objects.get(review=review, role="researcher")
    assert (researcher.verdict, researcher.error.split(":")[0]) == ("veto", "validation_error")


def test_a_provider_error_is_each_roles_fail_closed_vote(
    replay_settings, macd_strategy, committee_settings, llm_server,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    # nothing scripted: the server answers 500 to every call
    review_run(review_id=review.pk)
    assert len(llm_server.completions()) == 4  # bounded by the roles, no retries
    review.refresh_from_db()
    assert (review.verdict, review.effect, review.reasons) == ("veto", "veto", ["llm_veto"])
    votes = LLMCommitteeVote.objects.filter(review=review).order_by("pk")
    assert [(v.role, v.verdict, v.error[:9], v.tokens_prompt) for v in votes] == [
        (r, "veto", "http_500:", 0) for r in ROLES
    ]
    assert len(LLMCircuitBreaker.objects.get().error_times) == 1
    assert lane_reviews_continue(account_label="paper") == {"rejected": 1}
    _no_order()


def test_a_runaway_committee_loop_ends_with_at_most_one_review_over_the_daily_cap(
    replay_settings, macd_strategy, committee_settings, llm_server,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    # free input, 16 output tokens per call: each role's answer (about 30 words) costs more
    # than reserved, so the last review can end over the cap, but only that one
    committee_settings.LLM_MODEL_PRICES = {
        "test-model": {"input_per_1k": Decimal(0), "output_per_1k": Decimal(2)}
    }
    committee_settings.LLM_MAX_TOKENS = 16
    committee_settings.LLM_BUDGET_USD_PER_REVIEW = None
    committee_settings.LLM_BUDGET_USD_PER_STRATEGY_PER_DAY = None
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    calls = committee_budget_messages(review.input_json, config=ReviewConfig.current())
    assert [m["content"].count("Committee role: ") for c in calls for m in c] == [1, 0] * 4
    prompt = estimate_prompt_tokens([m for c in calls for m in c])
    estimate = cost_usd("test-model", tokens_prompt=prompt, tokens_completion=4 * 16)
    assert estimate == Decimal("0.128")  # four calls' 16 output tokens at 2 USD per 1,000
    words = len(json.dumps(vote("approve")).split())  # the test server's completion tokens
    actual = cost_usd("test-model", tokens_prompt=0, tokens_completion=4 * words)
    assert actual > estimate
    # room for a third reservation after two settled reviews, not for the third's usage
    cap = 2 * actual + estimate
    committee_settings.LLM_BUDGET_USD_PER_DAY = cap
    llm_server.responder = by_role("approve")
    ids = _clones(decision, review, 29)

    for review_id in ids:
        review_run(review_id=review_id)

    reservations = list(LLMSpendReservation.objects.order_by("pk"))
    reviewed = len(reservations)
    assert len(llm_server.completions()) == 4 * reviewed  # every reviewed review: four calls
    assert LLMCommitteeVote.objects.count() == 4 * reviewed
    assert {(r.status, r.estimated_usd, r.actual_usd) for r in reservations} == {
        ("settled", estimate, actual)
    }
    expected, spent = 0, Decimal(0)
    while spent + estimate <= cap:
        expected, spent = expected + 1, spent + actual
    assert (reviewed, expected, _spend()) == (3, 3, spent)
    assert [i for i in range(1, reviewed + 1) if actual * i > cap] == [3]  # only the last
    skipped = LLMDecisionReview.objects.filter(error__startswith="budget_exceeded")
    assert skipped.count() == len(ids) - reviewed > 0
    assert {(r.verdict, r.effect, tuple(r.reasons)) for r in skipped} == {
        ("error", "veto", ("llm_budget_exceeded:per_day",))
    }
    assert not LLMCommitteeVote.objects.filter(review__in=skipped).exists()


def test_the_review_page_shows_each_roles_vote(
    replay_settings, macd_strategy, committee_settings, llm_server,
    django_capture_on_commit_callbacks, admin_client,
):  # fmt: skip
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.responder = by_role(
        "approve", execution_critic=vote("approve", rationale_short="spread 2 bps, book deep")
    )
    review_run(review_id=review.pk)
    page = admin_client.get(f"/admin/trading/llmdecisionreview/{review.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    inline = html[html.index('id="committee_votes-group"') :]  # after the review's own fields
    assert inline.count("spread 2 bps, book deep") == 1
    assert inline.count("approve: role view") == 3
    assert [role for role in ROLES if role in inline] == list(ROLES)
    votes = LLMCommitteeVote.objects.filter(review=review)
    assert all(v.response_sha256 in inline for v in votes)


def test_a_committee_review_replays_as_a_committee(
    replay_settings, macd_strategy, committee_settings, llm_server,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    from trading.services.review_replay import review_ask_again as review_replay
    from trading.services.review_replay import review_replay_stored

    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.responder = by_role("approve", researcher="adjust")
    review_run(review_id=review.pk)
    review.refresh_from_db()
    assert review.verdict == "veto"  # an adjust without a quantity: the fail-closed verdict
    assert review_replay_stored(review).as_json() == {
        "review_id": review.pk,
        "result": "equal",
        "detail": "",
        "differences": {},
    }
    committee_settings.LLM_COMMITTEE_ENABLED = False  # the stored review says how to replay it
    committee_settings.LLM_COMMITTEE_ROLES = ["risk_critic"]
    same = review_replay(review_id=review.pk)
    assert (same.same_answer, same.replay_verdict, same.error) == (True, "veto", "")
    sent = llm_server.completions()
    assert [asked_role(b) for b in sent] == list(ROLES) * 2
    assert [b["messages"] for b in sent[4:]] == [b["messages"] for b in sent[:4]]
    llm_server.responder = by_role("approve", researcher="approve")
    changed = review_replay(review_id=review.pk)
    assert (changed.same_answer, changed.replay_verdict) == (False, "approve")
    assert LLMDecisionReview.objects.get().verdict == "veto"  # nothing written


def test_the_roles_share_the_reviews_deadline(committee_settings, llm_server):
    from tests.servers.base import Fault

    config = ReviewConfig.current()
    snapshot_json = {"decision": {"symbol": "AAPL", "qty": "10"}}
    llm_server.responder = by_role("approve")
    # past the deadline: no role is asked, each votes the fail-closed verdict
    result = committee_run(snapshot_json, config=config, deadline=time.monotonic() - 1)
    assert llm_server.completions() == []
    assert [(v.role, v.verdict, v.error_kind) for v in result.votes] == [
        (r, "veto", "deadline") for r in ROLES
    ]
    assert result.response.verdict == "veto"
    # the first answer takes longer than the whole deadline: the others are not asked
    started = time.monotonic()
    llm_server.inject(Fault("POST", r"/v1/chat/completions", delay=1.0))
    result = committee_run(snapshot_json, config=config, deadline=started + 0.4)
    assert len(llm_server.completions()) == 1
    assert [(v.role, v.error_kind) for v in result.votes] == [
        ("researcher", "timeout"),
        *((r, "deadline") for r in ROLES[1:]),
    ]
    # let the server finish the abandoned request before the next test scripts its answers
    # (the delayed handler would otherwise take the next test's first answer)
    time.sleep(max(0.0, started + 1.5 - time.monotonic()))


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"role": "oracle"}, "llm_committee_vote_role_valid"),
        ({"verdict": "error"}, "llm_committee_vote_verdict_valid"),
        ({"uncertainty_band": "extreme"}, "llm_committee_vote_band_valid"),
        ({"confidence": 1.5}, "llm_committee_vote_confidence_range"),
        ({}, "llm_committee_vote_unique"),  # a second vote of the same role
    ],
)
def test_the_database_refuses_a_vote_outside_the_contract(
    replay_settings, macd_strategy, committee_settings, llm_server,
    django_capture_on_commit_callbacks, fields, constraint,
):  # fmt: skip
    from django.db import IntegrityError, transaction

    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.responder = by_role("approve")
    review_run(review_id=review.pk)
    row = {
        "review": review, "role": "researcher", "verdict": "approve", "confidence": 0.5,
        "uncertainty_band": "low", "rationale_short": "r", **fields,
    }  # fmt: skip
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        LLMCommitteeVote.objects.create(**row)
    assert LLMCommitteeVote.objects.filter(review=review).count() == 4


@pytest.mark.django_db(transaction=True)
def test_votes_are_not_stored_when_the_expiry_wins(
    replay_settings, macd_strategy, committee_settings, llm_server
):
    from django.db import connection

    from trading.services.reviews import reviews_expire

    _start()
    assert _cycle().pending_review == 1  # its task goes to the embedded broker, not run here
    review = LLMDecisionReview.objects.get()
    answer = by_role("approve")

    def expire_during_the_last_role(body: dict[str, object]) -> str:
        if asked_role(body) == ROLES[-1]:  # the sweep, in another connection, goes first
            try:
                assert reviews_expire(now=review.deadline) == [review.pk]
            finally:
                connection.close()
        return str(answer(body))

    llm_server.responder = expire_during_the_last_role
    assert review_run(review_id=review.pk).result == "lost_to_expiry"
    assert len(llm_server.completions()) == 4
    review.refresh_from_db()
    assert (review.status, review.verdict) == ("expired", "error")
    assert review.response_json is not None and review.response_json["late_verdict"] == "approve"
    assert LLMCommitteeVote.objects.count() == 0
