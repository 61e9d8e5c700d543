"""Stability probes (trading/services/stability.py): a deterministic share of completed reviews
asked again once through the spend budget, flips recorded and counted, and the promotion gate on
an artifact's flip rate (trading/services/dspy_lanes/promote.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from tests.conftest import manage
from trading.models import LLMDecisionReview, LLMDspyWorkflowArtifact, LLMStabilityProbe
from trading.models.llm_spend import LLMSpendReservation
from trading.services.dspy_lanes import DspyLaneError, dspy_promote
from trading.services.llm_budget import cost_usd
from trading.services.reviews import review_run
from trading.services.stability import probe_selected, stability_probe_run
from trading.tests.llm.answers import dspy_text, legacy_json
from trading.tests.llm.test_dspy_runtime import _pending
from trading.tests.llm.test_llm_budget import PRICES, _clones

pytestmark = pytest.mark.django_db


def _probes(flipped: str) -> float:
    name = "torghut_trading_llm_stability_probes_total"
    return REGISTRY.get_sample_value(name, {"flipped": flipped}) or 0.0


def test_the_probed_share_is_chosen_by_the_review_id_the_same_on_every_run():
    ids = range(1, 20001)
    tenth = [i for i in ids if probe_selected(i, 0.1)]
    assert tenth == [i for i in ids if probe_selected(i, 0.1)]
    assert 1900 <= len(tenth) <= 2100
    assert set(i for i in ids if probe_selected(i, 0.05)) < set(tenth)
    assert [i for i in ids if probe_selected(i, 0.0)] == []
    assert [i for i in ids if probe_selected(i, 1.0)] == list(ids)


def test_the_share_setting_queues_the_probe_of_a_completed_review_after_commit(
    llm_settings, replay_settings, macd_strategy, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending(django_capture_on_commit_callbacks)
    first, second, failed = _clones(decision, review, 2)
    llm_settings.LLM_STABILITY_PROBE_SHARE = 0.0
    llm_server.queue(legacy_json("approve"))
    with django_capture_on_commit_callbacks(execute=False) as off:
        review_run(review_id=first)
    llm_settings.LLM_STABILITY_PROBE_SHARE = 1.0
    llm_server.queue(legacy_json("approve"))
    with django_capture_on_commit_callbacks(execute=False) as on:
        review_run(review_id=second)
    with django_capture_on_commit_callbacks(execute=False) as errored:
        review_run(review_id=failed)  # nothing queued: http_500, no verdict to probe
    assert (len(off), len(on), len(errored)) == (0, 1, 0)
    assert stability_probe_run(review_id=failed).result == "not_probeable"
    llm_settings.LLM_STABILITY_PROBE_SHARE = 0.0
    assert stability_probe_run(review_id=second).result == "not_selected"
    assert LLMStabilityProbe.objects.count() == 0


def test_a_probe_asks_the_same_question_once_through_the_budget_and_records_a_flip(
    llm_settings, replay_settings, macd_strategy, llm_server, django_capture_on_commit_callbacks
):
    from trading.tasks import llm_stability_probe_run

    llm_settings.LLM_MODEL_PRICES = PRICES
    llm_settings.LLM_SEED = 11
    llm_settings.LLM_STABILITY_PROBE_SHARE = 1.0
    decision, review = _pending(django_capture_on_commit_callbacks)
    steady, flipping = _clones(decision, review, 1)
    before = (_probes("false"), _probes("true"))
    for review_id, again in ((steady, "approve"), (flipping, "veto")):
        llm_server.queue(legacy_json("approve"))
        review_run(review_id=review_id)
        llm_server.queue(legacy_json(again))
        assert llm_stability_probe_run(review_id)["result"] == "probed"
    sent = llm_server.completions()
    assert len(sent) == 4
    steady_row = LLMDecisionReview.objects.get(pk=steady)
    assert sent[1]["messages"] == sent[0]["messages"] == steady_row.prompt_json
    assert (sent[1]["temperature"], sent[1]["seed"]) == (0.0, 11)
    rows = {p.review_id: p for p in LLMStabilityProbe.objects.all()}
    assert [(rows[i].kind, rows[i].original_verdict, rows[i].verdict, rows[i].flipped)
            for i in (steady, flipping)] == [
        ("legacy", "approve", "approve", False),
        ("legacy", "approve", "veto", True),
    ]  # fmt: skip
    words = sum(len(m["content"].split()) for m in sent[1]["messages"])
    answer = len(legacy_json("approve").split())
    assert (rows[steady].tokens_prompt, rows[steady].tokens_completion) == (words, answer)
    assert rows[steady].cost_usd == cost_usd(
        "test-model", tokens_prompt=words, tokens_completion=answer
    )
    probe_spend = LLMSpendReservation.objects.get(review_id=steady, call="probe")
    assert (probe_spend.status, probe_spend.actual_usd) == ("settled", rows[steady].cost_usd)
    assert (_probes("false"), _probes("true")) == (before[0] + 1, before[1] + 1)
    # a redelivered task asks nothing
    assert stability_probe_run(review_id=flipping).result == "already_probed"
    assert len(llm_server.completions()) == 4


def test_a_committee_review_is_not_probed_and_asks_nothing(
    llm_settings, replay_settings, macd_strategy, llm_server, django_capture_on_commit_callbacks
):
    from trading.tests.llm.answers import by_role

    llm_settings.LLM_STABILITY_PROBE_SHARE = 1.0
    llm_settings.LLM_COMMITTEE_ENABLED = True
    decision, review = _pending(django_capture_on_commit_callbacks)
    llm_server.responder = by_role("approve")
    review_run(review_id=review.pk)
    assert LLMDecisionReview.objects.get(pk=review.pk).verdict == "approve"
    calls = len(llm_server.completions())
    assert calls == 4  # one per role
    assert stability_probe_run(review_id=review.pk).result == "not_probeable"
    assert (len(llm_server.completions()), LLMStabilityProbe.objects.count()) == (calls, 0)
    assert not LLMSpendReservation.objects.filter(review_id=review.pk, call="probe").exists()


def test_a_probe_over_the_budget_makes_no_call_and_is_not_a_measurement(
    llm_settings, replay_settings, macd_strategy, llm_server, django_capture_on_commit_callbacks
):
    llm_settings.LLM_MODEL_PRICES = PRICES
    llm_settings.LLM_STABILITY_PROBE_SHARE = 1.0
    decision, review = _pending(django_capture_on_commit_callbacks)
    llm_server.queue(legacy_json("approve"))
    review_run(review_id=review.pk)
    estimate = LLMSpendReservation.objects.get().estimated_usd
    llm_settings.LLM_BUDGET_USD_PER_REVIEW = estimate - Decimal("0.00000001")
    assert stability_probe_run(review_id=review.pk).result == "budget_exceeded"
    assert len(llm_server.completions()) == 1
    probe = LLMStabilityProbe.objects.get()
    assert (probe.status, probe.verdict, probe.flipped, probe.error) == (
        "done",
        "",
        False,
        "llm_budget_exceeded:per_review",
    )
    assert LLMSpendReservation.objects.filter(call="probe").count() == 0


def test_probe_settings_fail_at_startup_naming_the_variable():
    bad = manage(
        "check", env={"LLM_STABILITY_PROBE_SHARE": "1.5", "LLM_STABILITY_MAX_FLIP_RATE": "x"}
    )
    assert bad.returncode != 0
    problems = [line.strip() for line in bad.stderr.splitlines() if line.startswith("  - ")]
    assert [p.split("=")[0] for p in problems] == [
        "- LLM_STABILITY_PROBE_SHARE",
        "- LLM_STABILITY_MAX_FLIP_RATE",
    ]


# -- the promotion gate ---------------------------------------------------------------------


@pytest.fixture
def shadowing(promoted, llm_settings, replay_settings, macd_strategy):
    llm_settings.LLM_DSPY_RUNTIME_MODE = "shadow"
    llm_settings.LLM_DSPY_ARTIFACT_HASH = promoted
    llm_settings.LLM_STABILITY_PROBE_SHARE = 1.0
    return promoted


def _probe_shadow_reviews(llm_server, capture, flips: set[int], n: int = 20) -> None:
    """`n` shadow reviews; the DSPy shadow answers approve, its probe approves again except for
    the reviews numbered in `flips`."""
    decision, review = _pending(capture)
    for i, review_id in enumerate(_clones(decision, review, n - 1)):
        llm_server.queue(legacy_json("approve"), dspy_text("approve"))
        review_run(review_id=review_id)
        llm_server.queue(dspy_text("veto" if i in flips else "approve"))
        assert stability_probe_run(review_id=review_id).result == "probed"


def _promote(artifact_hash: str, approver, target: str = "constrained_live"):
    evaluation = LLMDspyWorkflowArtifact.objects.get(lane="eval", artifact_hash=artifact_hash)
    return dspy_promote(
        artifact_hash=artifact_hash,
        eval_hash=evaluation.eval_hash,
        target=target,
        approver=approver,
        approval_token_ref="CHG-2",
    )


def _promoted_to(target: str) -> int:
    return LLMDspyWorkflowArtifact.objects.filter(
        lane="promote", status="promoted", promotion_target=target
    ).count()


def test_a_stable_artifact_is_promoted_beyond_shadow_once_its_reviews_were_probed(
    shadowing, llm_server, approver, django_capture_on_commit_callbacks, admin_client
):
    with pytest.raises(DspyLaneError) as missing:
        _promote(shadowing, approver)
    assert missing.value.code == "stability_probes_missing"
    assert _promoted_to("constrained_live") == 0
    _probe_shadow_reviews(llm_server, django_capture_on_commit_callbacks, flips=set())
    probes = LLMStabilityProbe.objects.all()
    assert {(p.kind, p.artifact_hash, p.verdict, p.flipped) for p in probes} == {
        ("dspy", shadowing, "approve", False)
    }
    assert probes.count() == 20
    page = admin_client.get("/admin/trading/llmstabilityprobe/")
    assert (page.status_code, page.content.decode().count(shadowing)) == (200, 20)
    assert _promote(shadowing, approver).status == "promoted"
    assert _promoted_to("constrained_live") == 1


def test_an_artifact_flipping_more_than_the_maximum_is_refused(
    shadowing, llm_settings, llm_server, approver, django_capture_on_commit_callbacks
):
    # 2 of 20 probes flip: 10 % > the default 5 %
    _probe_shadow_reviews(llm_server, django_capture_on_commit_callbacks, flips={3, 11})
    assert LLMStabilityProbe.objects.filter(flipped=True).count() == 2
    for target in ("shadow", "constrained_live"):
        with pytest.raises(DspyLaneError) as refused:
            _promote(shadowing, approver, target)
        assert refused.value.code == "stability_flip_rate_exceeded"
        assert refused.value.message == "2 of 20 probes flipped (0.1000 > 0.05)"
    assert (_promoted_to("shadow"), _promoted_to("constrained_live")) == (1, 0)  # the fixture's
    llm_settings.LLM_STABILITY_MAX_FLIP_RATE = 0.1  # not above: allowed
    assert _promote(shadowing, approver).status == "promoted"
    assert _promoted_to("constrained_live") == 1
