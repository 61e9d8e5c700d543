"""Reproducible reviews: each review row keeps what reproduces it (the raw answer and its
sha256, the hash of the messages sent, temperature, seed, the provider's fingerprint and the
cost of every call), and `manage.py llm_review_replay` re-evaluates it from the stored answer
exactly, asking nothing (trading/services/review_replay.py)."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest
from django.core.management import call_command

from torghut_site.hashing import canonical_text_hash
from trading.models import LLMDecisionReview
from trading.services.reviews import review_run
from trading.tests.llm.answers import legacy_json
from trading.tests.llm.test_llm_budget import PRICES, _clones
from trading.tests.llm.test_review_cycle import _pending_decision

pytestmark = pytest.mark.django_db


def _replay(*args: str) -> tuple[int, dict]:
    from io import StringIO

    out = StringIO()
    try:
        call_command("llm_review_replay", *args, stdout=out)
    except SystemExit as exit_code:
        return int(exit_code.code or 0), json.loads(out.getvalue())
    return 0, json.loads(out.getvalue())


def test_a_review_stores_its_raw_answer_prompt_hash_sampling_fingerprint_and_cost(
    llm_settings, replay_settings, macd_strategy, llm_server, django_capture_on_commit_callbacks,
    admin_client,
):  # fmt: skip
    llm_settings.LLM_TEMPERATURE = 0.3
    llm_settings.LLM_SEED = 7
    llm_settings.LLM_MODEL_PRICES = PRICES
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    answer = "```json\n" + legacy_json("approve") + "\n```"  # fenced: stored as it came
    llm_server.queue(answer)
    llm_server.system_fingerprint = "fp_3f2a9c"
    review_run(review_id=review.pk)
    review.refresh_from_db()
    (sent,) = llm_server.completions()
    assert (sent["temperature"], sent["seed"]) == (0.3, 7)
    assert (review.temperature, review.seed, review.system_fingerprint) == (0.3, 7, "fp_3f2a9c")
    assert review.prompt_sha256 == canonical_text_hash(sent["messages"])
    assert (review.response_body, review.response_sha256) == (
        answer,
        hashlib.sha256(answer.encode()).hexdigest(),
    )
    prompt_words = sum(len(m["content"].split()) for m in sent["messages"])
    expected = (Decimal("1.5") * prompt_words + 2 * len(answer.split())) / 1000
    assert review.cost_usd == expected.quantize(Decimal("0.00000001"))
    assert review.config_json["deterministic_order"] == {
        "side": "buy",
        "qty": "10.00000000",
        "order_type": "market",
        "limit_price": None,
        "price": str(decision.price),
        "qty_step": "1",
    }
    page = admin_client.get(f"/admin/trading/llmdecisionreview/{review.pk}/change/")
    html = page.content.decode()
    assert (page.status_code, "fp_3f2a9c" in html, review.response_sha256 in html) == (
        200,
        True,
        True,
    )
    assert review.prompt_sha256 in html and "```json" in html and "0.3" in html


ANSWERS = [
    ("approve", legacy_json("approve")),
    ("veto", legacy_json("veto")),
    ("abstain", legacy_json("abstain")),
    ("escalate", legacy_json("escalate", escalate_reason="spread widened")),
    ("low_confidence", legacy_json("approve", confidence=0.1)),
    ("adjust", legacy_json("adjust", adjusted_qty="6")),
    ("adjust_limit", None),  # built with the decision's price
    ("adjust_invented", legacy_json("adjust", adjusted_qty="40")),  # above the order: rejected
    ("not_json", "the trade looks fine to me"),
    ("schema_error", legacy_json("adjust")),  # adjust without adjusted_qty
]


def _run_reviews(llm_settings, llm_server, decision, review) -> list[int]:
    llm_settings.LLM_ADJUSTMENT_ALLOWED = True
    llm_settings.LLM_ADJUSTMENT_APPROVED = True
    llm_settings.LLM_MIN_CONFIDENCE = 0.5
    llm_settings.LLM_QUALITY_FAIL_MODE = "veto"
    llm_settings.LLM_CIRCUIT_MAX_ERRORS = 100  # four error answers in a row: keep the circuit shut
    ids = _clones(decision, review, len(ANSWERS))  # one more: its call fails (no answer)
    limit = legacy_json(
        "adjust", adjusted_qty="5", adjusted_order_type="limit", limit_price=str(decision.price)
    )
    for review_id, (_, answer) in zip(ids, ANSWERS, strict=False):
        llm_server.queue(answer or limit)
        review_run(review_id=review_id)
    review_run(review_id=ids[-1])  # nothing queued: the server answers 500
    return ids


def test_every_review_replays_equal_from_its_stored_answer_and_nothing_is_asked(
    llm_settings, replay_settings, macd_strategy, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    ids = _run_reviews(llm_settings, llm_server, decision, review)
    rows = {r.pk: r for r in LLMDecisionReview.objects.filter(pk__in=ids)}
    seen = {(rows[i].verdict, rows[i].effect, tuple(rows[i].reasons)) for i in ids}
    assert seen == {
        ("approve", "pass", ()),
        ("veto", "veto", ("llm_veto",)),
        ("abstain", "pass", ("llm_abstain",)),  # LLM_ABSTAIN_FAIL_MODE default
        ("escalate", "veto", ("llm_escalate",)),
        ("approve", "veto", ("llm_confidence_below_minimum",)),
        ("adjust", "shrink", ("llm_adjust",)),
        ("error", "veto", ("llm_number_unsupported:adjusted_qty_above_deterministic",)),
        ("error", "veto", ("llm_review_error:parse_error",)),
        ("error", "veto", ("llm_review_error:validation_error",)),
        ("error", "veto", ("llm_review_error:http_500",)),
    }
    limited = rows[ids[6]]
    assert (limited.adjusted_order_type, limited.limit_price, limited.final_qty) == (
        "limit",
        decision.price,
        Decimal(5),
    )
    calls = len(llm_server.completions())
    before = list(LLMDecisionReview.objects.order_by("pk").values())
    # the settings move on; the replay uses what each review recorded
    llm_settings.LLM_MIN_CONFIDENCE = 0.95
    llm_settings.LLM_ADJUSTMENT_ALLOWED = False
    assert _replay("--all") == (
        0,
        {"replayed": 10, "equal": 10, "different": 0, "unreplayable": 1, "different_reviews": []},
    )
    for review_id in ids[:-1]:
        assert _replay("--review-id", str(review_id)) == (
            0,
            {"review_id": review_id, "result": "equal", "detail": "", "differences": {}},
        )
    assert _replay("--review-id", str(ids[-1]))[0] == 2  # no stored answer: unreplayable
    assert len(llm_server.completions()) == calls  # nothing asked again
    assert list(LLMDecisionReview.objects.order_by("pk").values()) == before  # nothing written


def test_a_tampered_body_or_verdict_is_reported_and_exits_2(
    llm_settings, replay_settings, macd_strategy, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    first, second = _clones(decision, review, 1)
    for review_id, verdict in ((first, "veto"), (second, "approve")):
        llm_server.queue(legacy_json(verdict))
        review_run(review_id=review_id)
    stored = LLMDecisionReview.objects.get(pk=first)
    LLMDecisionReview.objects.filter(pk=first).update(
        response_body=stored.response_body.replace('"veto"', '"approve"', 1)
    )
    assert _replay("--review-id", str(first)) == (
        2,
        {
            "review_id": first,
            "result": "different",
            "detail": "response_sha256_mismatch",
            "differences": {},
        },
    )
    LLMDecisionReview.objects.filter(pk=second).update(verdict="veto")
    code, summary = _replay("--all")
    assert (code, summary["replayed"], summary["equal"], summary["different"]) == (2, 2, 0, 2)
    assert summary["different_reviews"][1] == {
        "review_id": second,
        "result": "different",
        "detail": "verdict",
        "differences": {"verdict": {"stored": "veto", "replayed": "approve"}},
    }


def test_since_limits_the_replay_and_must_be_an_aware_time(
    llm_settings, replay_settings, macd_strategy, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.queue(legacy_json("approve"))
    review_run(review_id=review.pk)
    review.refresh_from_db()
    later = review.created_at.replace(year=review.created_at.year + 1).isoformat()
    assert _replay("--all", "--since", later)[1]["replayed"] == 0
    assert _replay("--all", "--since", review.created_at.isoformat())[1]["equal"] == 1
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not an ISO time with a zone"):
        call_command("llm_review_replay", "--all", "--since", "2026-01-01T00:00:00")


def test_a_dspy_active_review_replays_equal_from_its_stored_output(
    promoted, llm_settings, replay_settings, macd_strategy, llm_server,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    from trading.tests.llm.answers import committee
    from trading.tests.llm.data import constant_dspy
    from trading.tests.llm.test_dspy_runtime import _pending

    llm_settings.LLM_DSPY_RUNTIME_MODE = "active"
    llm_settings.LLM_DSPY_ARTIFACT_HASH = promoted
    decision, review = _pending(django_capture_on_commit_callbacks)
    first, second = _clones(decision, review, 1)
    llm_server.responder = constant_dspy("approve")
    review_run(review_id=first)
    llm_server.responder = constant_dspy("approve", committee=committee(risk_critic="veto"))
    review_run(review_id=second)
    rows = LLMDecisionReview.objects.filter(pk__in=(first, second)).order_by("pk")
    assert [(r.runtime, r.verdict, r.effect, r.reasons) for r in rows] == [
        ("dspy_active", "approve", "pass", []),
        ("dspy_active", "approve", "veto", ["llm_committee_veto:risk_critic"]),
    ]
    sent = llm_server.completions()
    for row, body in zip(rows, sent, strict=True):
        assert json.loads(row.response_body) == (row.response_json or {})["dspy"]["output"]
        assert row.prompt_sha256 == canonical_text_hash(body["messages"])
        assert (row.response_json or {})["dspy"]["lm_completions"] == [
            constant_dspy("approve", committee=committee(risk_critic="veto"))(body)
            if row.pk == second
            else constant_dspy("approve")(body)
        ]
    assert _replay("--all")[1] == {
        "replayed": 2,
        "equal": 2,
        "different": 0,
        "unreplayable": 0,
        "different_reviews": [],
    }


def test_a_shadow_review_replays_with_its_recorded_shadow_flag(
    llm_settings, replay_settings, macd_strategy, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    LLMDecisionReview.objects.filter(pk=review.pk).update(shadow=True)
    llm_server.queue(legacy_json("veto"))
    review_run(review_id=review.pk)
    review.refresh_from_db()
    assert (review.verdict, review.effect, review.reasons) == ("veto", "shadow", ["llm_veto"])
    assert _replay("--review-id", str(review.pk))[0] == 0
    LLMDecisionReview.objects.filter(pk=review.pk).update(shadow=False)  # the flag matters
    assert _replay("--review-id", str(review.pk))[1]["differences"] == {
        "effect": {"stored": "shadow", "replayed": "veto"}
    }
