"""The autonomy API: the loop's status, the research ledger, and the promotion actions, on a run
recorded by the real lane over the shipped sample inputs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from rest_framework.test import APIClient

from autonomy.models import CandidateStage, DriftCheck, ResearchCandidate, ResearchRun
from autonomy.services.governance import evidence_continuity_check
from autonomy.tests.conftest import SAMPLE_ARTIFACTS
from autonomy.tests.test_admin import (  # noqa: F401 - fixtures shared with the admin tests
    PAPER_LANE,
    STRATEGY,
    Sample,
    lane_settings_fixture,
    sample_fixture,
)
from torghut_site.auth import api_token_issue
from trading.models import Strategy

pytestmark = pytest.mark.django_db

APPROVAL_TOKEN = "autonomy-approval-token-never-shown"  # noqa: S105


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()  # the `control` throttle counts per user across tests
    yield
    cache.clear()


def user_with(username: str, *codenames: str):
    user = get_user_model().objects.create_user(username, password=f"pw-{username}-123")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return get_user_model().objects.get(pk=user.pk)


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def reader() -> APIClient:
    return client_for(user_with("reader"))


@pytest.fixture
def approver() -> APIClient:
    return client_for(user_with("approver", "approve_promotion"))


def error(response, code: str, message: str) -> dict[str, Any]:
    """The project's one error format, with this response's request id."""
    return {
        "error": {"code": code, "message": message, "details": None},
        "request_id": response["X-Request-ID"],
    }


def iso(value: datetime | None) -> str | None:
    """A time as DRF renders it."""
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def actions_url(sample: Sample, action: str) -> str:
    return f"/autonomy/candidates/{sample.candidate.candidate_id}/{action}"


def nothing_written(sample: Sample) -> None:
    assert not sample.promotions().exists()
    assert not Strategy.objects.filter(name=STRATEGY).exists()
    sample.candidate.refresh_from_db()
    assert (sample.candidate.lifecycle_role, sample.candidate.lifecycle_status) == (
        "challenger",
        "evaluated",
    )
    stage = CandidateStage.objects.get(candidate_id=sample.candidate.candidate_id)
    assert stage.active_stage == "policy-dry-run"


# ------------------------------------------------------------------ reads


# the gate rows of the sample run in `GET /trading/autonomy`
SAMPLE_GATES = [
    {"gate": "gate0", "name": "data_integrity", "status": "pass", "reasons": []},
    {
        "gate": "gate1",
        "name": "statistical_robustness",
        "status": "pass",
        "reasons": [],
    },
    {"gate": "gate2", "name": "risk_capacity", "status": "pass", "reasons": []},
    {"gate": "gate3", "name": "shadow_paper_quality", "status": "pass", "reasons": []},
    {"gate": "gate4", "name": "operational_readiness", "status": "pass", "reasons": []},
    {"gate": "gate5", "name": "live_ramp", "status": "skipped", "reasons": []},
    {
        "gate": "gate6",
        "name": "profitability_evidence",
        "status": "pass",
        "reasons": [],
    },
    {
        "gate": "gate7",
        "name": "uncertainty_calibration",
        "status": "not_configured",
        "reasons": [],
    },
    {"gate": "gate8", "name": "overfitting", "status": "not_configured", "reasons": []},
]


def test_trading_autonomy_status(sample, reader, settings):
    settings.TRADING_AUTONOMY_APPROVAL_TOKEN = APPROVAL_TOKEN
    run = sample.run
    response = reader.get("/trading/autonomy")
    assert response.status_code == 200
    assert APPROVAL_TOKEN not in response.content.decode()
    patch = run.artifacts["paper-candidate/strategy-configmap-patch.yaml"]
    drift = DriftCheck.objects.get(run=run)  # every recorded lane run gets one
    assert response.json() == {
        "enabled": False,
        "interval_seconds": 300,
        "signal_lookback_minutes": 15,
        "gate_policy": {
            "path": str(settings.TRADING_AUTONOMY_GATE_POLICY_PATH),
            "version": "v3-gates-1",
            "error": None,
        },
        "strategy_config_path": str(settings.TRADING_AUTONOMY_STRATEGY_CONFIG_PATH),
        "allow_live_promotion": False,
        "approval_token_configured": True,
        "artifact_dir": str(settings.TRADING_ARTIFACT_DIR),
        "last_run": {
            "run_id": run.run_id,
            "status": "passed",
            "trigger": "cli",
            "started_at": iso(run.started_at),
            "finished_at": iso(run.finished_at),
            "candidate_id": sample.candidate.candidate_id,
            "promotion_target": "paper",
            "recommended_mode": "paper",
            "recommendation": {"action": "promote", "eligible": True, "reasons": []},
            "gates_allowed": True,
            "gates": SAMPLE_GATES,
            "patch_path": patch["path"],
            "patch_uri": patch["uri"],
            "progress": {"done": 6, "total": 6, "label": "artifacts"},
            "error": "",
        },
        "champions": [],
        "last_drift_check": {
            "run_id": run.run_id,
            "strategy_name": STRATEGY,
            "checked_at": iso(drift.checked_at),
            "reason_codes": drift.reason_codes,
            "action": drift.action,
            "action_status": drift.action_status,
            "rollback_triggered": False,
            "rollback_candidate_id": "",
        },
        "evidence_continuity": None,
    }

    report = evidence_continuity_check()
    approver = client_for(user_with("approver", "approve_promotion"))
    approver.post(actions_url(sample, "promote"), {"mode": "paper", "reason": "ok"}, format="json")
    body = reader.get("/trading/autonomy").json()
    assert body["evidence_continuity"] == {
        "checked_at": iso(report.checked_at),
        "passed": True,
        "runs_checked": 1,
        "failed_runs": [],
    }
    assert body["champions"] == [
        {
            "candidate_id": sample.candidate.candidate_id,
            "strategy_name": STRATEGY,
            "promotion_target": "paper",
            "run_id": run.run_id,
        }
    ]


def test_trading_autonomy_status_without_runs_or_a_readable_policy(db, reader, settings, tmp_path):
    settings.TRADING_AUTONOMY_GATE_POLICY_PATH = str(tmp_path / "missing.json")
    body = reader.get("/trading/autonomy").json()
    assert body["last_run"] is None
    assert body["approval_token_configured"] is False
    assert body["gate_policy"]["version"] is None
    assert body["gate_policy"]["error"].startswith(f"{tmp_path}/missing.json: cannot read")


def test_reads_need_a_signed_in_caller(sample):
    client = APIClient()
    for path in (
        "/trading/autonomy",
        "/autonomy/runs",
        f"/autonomy/runs/{sample.run.run_id}",
        f"/autonomy/candidates/{sample.candidate.candidate_id}",
    ):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "not_authenticated"


def test_run_list_is_paginated_and_filtered(sample, reader):
    for n, (status, trigger) in enumerate(
        [("skipped", "schedule"), ("failed", "schedule"), ("skipped", "cli")]
    ):
        ResearchRun.objects.create(run_id=f"{n:024d}", status=status, trigger=trigger)
    ids = {run.run_id: run.pk for run in ResearchRun.objects.all()}
    body = reader.get("/autonomy/runs", {"limit": 2}).json()
    assert set(body) == {"next", "results"}
    assert [r["run_id"] for r in body["results"]] == [f"{2:024d}", f"{1:024d}"]
    assert body["next"] == f"http://testserver/autonomy/runs?limit=2&after_id={ids[f'{1:024d}']}"
    last = reader.get(body["next"]).json()
    assert [r["run_id"] for r in last["results"]] == [f"{0:024d}", sample.run.run_id]
    assert last["next"] is None
    # the filters ride along in `next`
    schedule = reader.get("/autonomy/runs", {"trigger": "schedule", "limit": 1}).json()
    assert [r["run_id"] for r in schedule["results"]] == [f"{1:024d}"]
    assert schedule["next"] == (
        f"http://testserver/autonomy/runs?trigger=schedule&limit=1&after_id={ids[f'{1:024d}']}"
    )
    following = reader.get(schedule["next"]).json()
    assert [r["run_id"] for r in following["results"]] == [f"{0:024d}"]
    assert following["next"] is None

    skipped = reader.get("/autonomy/runs", {"status": "skipped", "trigger": "schedule"}).json()
    assert [r["run_id"] for r in skipped["results"]] == [f"{0:024d}"]
    passed = reader.get("/autonomy/runs", {"status": "passed"}).json()
    (row,) = passed["results"]
    run = sample.run
    assert row == {
        "run_id": run.run_id,
        "status": "passed",
        "trigger": "cli",
        "strategy_name": STRATEGY,
        "strategy_type": "legacy_macd_rsi",
        "strategy_version": "1.0.0",
        "promotion_target": "paper",
        "recommended_mode": "paper",
        "gate_policy_version": "v3-gates-1",
        "gate_report_trace_id": run.gate_report_trace_id,
        "recommendation_trace_id": run.recommendation_trace_id,
        "recommendation": run.recommendation,
        "progress": {"done": 6, "total": 6, "label": "artifacts"},
        "error": "",
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "candidate_ids": [sample.candidate.candidate_id],
    }

    bad = reader.get("/autonomy/runs", {"status": "exploded"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_request"
    assert bad.json()["error"]["details"] == {"status": ['"exploded" is not a valid choice.']}
    assert reader.get("/autonomy/runs", {"trigger": "cli\x00"}).status_code == 400


def test_run_list_is_one_query_per_page(sample, reader, django_assert_num_queries):
    for n in range(5):
        ResearchRun.objects.create(run_id=f"{n:024d}", status="skipped")
    ResearchCandidate.objects.create(
        run=ResearchRun.objects.get(run_id=f"{4:024d}"),
        candidate_id="cand-000000000002",
        candidate_hash="b",
        strategy_name=STRATEGY,
        strategy_type="legacy_macd_rsi",
        promotion_target="paper",
    )
    ResearchCandidate.objects.create(
        run=ResearchRun.objects.get(run_id=f"{4:024d}"),
        candidate_id="cand-000000000001",
        candidate_hash="a",
        strategy_name=STRATEGY,
        strategy_type="legacy_macd_rsi",
        promotion_target="paper",
    )
    # the page with its candidates' ids (the token auth touches nothing: a cached user)
    with django_assert_num_queries(1):
        body = reader.get("/autonomy/runs").json()
    by_run = {row["run_id"]: row["candidate_ids"] for row in body["results"]}
    assert by_run == {
        **{f"{n:024d}": [] for n in range(4)},
        f"{4:024d}": ["cand-000000000002", "cand-000000000001"],  # in id order
        sample.run.run_id: [sample.candidate.candidate_id],
    }


def test_run_list_default_page_is_50_and_a_limit_above_500_is_refused(db, reader):
    ResearchRun.objects.bulk_create(
        ResearchRun(run_id=f"{n:024d}", status="skipped") for n in range(51)
    )
    body = reader.get("/autonomy/runs").json()
    assert len(body["results"]) == 50
    assert body["results"][0]["run_id"] == f"{50:024d}"
    assert body["next"] is not None
    assert len(reader.get("/autonomy/runs", {"limit": 500}).json()["results"]) == 51
    refused = reader.get("/autonomy/runs", {"limit": 501})
    assert refused.status_code == 400
    assert refused.json()["error"]["details"] == {
        "limit": ["Ensure this value is less than or equal to 500."]
    }
    for query in ("after_id=0", "after_id=x", "limit=", "limit=2&limit=3"):
        response = reader.get(f"/autonomy/runs?{query}")
        assert response.status_code == 400, query
        assert response.json()["error"]["code"] == "invalid_request"
    # `offset` is no longer a parameter: the first page
    first = reader.get("/autonomy/runs", {"offset": 2, "limit": 1}).json()["results"]
    assert [row["run_id"] for row in first] == [f"{50:024d}"]


def test_run_detail_has_candidate_folds_stress_gates_and_artifacts(sample, reader):
    run, candidate = sample.run, sample.candidate
    body = reader.get(f"/autonomy/runs/{run.run_id}").json()
    assert body["run_id"] == run.run_id
    assert body["gate_report"] == run.gate_report
    assert body["readiness"] == run.readiness
    assert [a["path"] for a in body["artifacts"]] == SAMPLE_ARTIFACTS
    first = body["artifacts"][0]
    manifest = run.artifacts[first["path"]]
    assert first == {
        "path": "backtest/baseline-evaluation-report.json",
        "sha256": manifest["sha256"],
        "size": manifest["size"],
        "uri": manifest["uri"],
        "storage_error": "",
    }
    (cand,) = body["candidates"]
    assert cand["candidate_id"] == candidate.candidate_id
    assert cand["run_id"] == run.run_id
    assert cand["equity_curve"] == candidate.equity_curve
    assert [f["fold_name"] for f in cand["folds"]] == ["autonomous_lane"]
    assert cand["folds"][0]["trade_count"] == 2
    assert sorted(s["stress_case"] for s in cand["stress"]) == [
        "halt",
        "liquidity",
        "spread",
        "volatility",
    ]
    assert cand["stage"]["active_stage"] == "policy-dry-run"
    assert [p["decision_action"] for p in cand["promotions"]] == ["hold"]  # the lane's audit row


def test_unknown_run_and_candidate_are_404(sample, reader):
    missing = reader.get("/autonomy/runs/ffffffffffffffffffffffff")
    assert missing.status_code == 404
    assert missing.json() == error(missing, "run_not_found", "no run ffffffffffffffffffffffff")
    nul = reader.get("/autonomy/runs/abc%00def")
    assert nul.status_code == 404
    candidate = reader.get("/autonomy/candidates/cand-nope")
    assert candidate.status_code == 404
    assert candidate.json() == error(candidate, "candidate_not_found", "no candidate cand-nope")


def test_candidate_detail(sample, reader):
    candidate = sample.candidate
    body = reader.get(f"/autonomy/candidates/{candidate.candidate_id}").json()
    assert {
        k: body[k] for k in ("candidate_id", "strategy_name", "lifecycle_role", "lifecycle_status")
    } == {
        "candidate_id": candidate.candidate_id,
        "strategy_name": STRATEGY,
        "lifecycle_role": "challenger",
        "lifecycle_status": "evaluated",
    }
    assert body["parameter_set"] == {"buy_rsi_threshold": 35, "qty": 1, "sell_rsi_threshold": 65}
    assert body["stage"]["run_id"] == sample.run.run_id


# ------------------------------------------------------------------ actions


def test_promote_to_paper_then_repeat_returns_the_existing_promotion(sample, approver):
    candidate = sample.candidate
    response = approver.post(
        actions_url(sample, "promote"), {"mode": "paper", "reason": "reviewed"}, format="json"
    )
    assert response.status_code == 201, response.content
    promotion = sample.promotions().get()
    body = response.json()
    assert body["created"] is True
    assert body["promotion"] == {
        "id": promotion.pk,
        "candidate_id": candidate.candidate_id,
        "decision_action": "promote",
        "requested_mode": "paper",
        "approved_mode": "paper",
        "approver": "approver",
        "approver_role": "operator",
        "reason": "reviewed",
        "account_label": "paper",
        "paper_candidate_patch_ref": promotion.paper_candidate_patch_ref,
        "effective_time": iso(promotion.effective_time),
        "rationale": sample.run.recommendation["rationale"],
        "recommendation_trace_id": sample.run.recommendation_trace_id,
        "successor_candidate_id": "",
        "rollback_candidate_id": "",
        "evidence_bundle": promotion.evidence_bundle,
        "created_at": iso(promotion.created_at),
    }
    assert promotion.paper_candidate_patch_ref.endswith(
        f"/autonomy/runs/{sample.run.run_id}/paper-candidate/strategy-configmap-patch.yaml"
    )
    assert body["candidate"]["lifecycle_role"] == "champion"
    assert body["candidate"]["lifecycle_status"] == "active"
    strategy = Strategy.objects.get(name=STRATEGY)
    assert (strategy.enabled, strategy.account_labels, strategy.source) == (
        True,
        ["paper"],
        "promotion",
    )

    again = approver.post(
        actions_url(sample, "promote"),
        {"mode": "paper", "reason": "clicked twice"},
        format="json",
    )
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["promotion"] == body["promotion"]
    assert sample.promotions().count() == 1


def test_promote_with_an_api_token(sample):
    user = user_with("tokenholder", "approve_promotion")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=user, name='t').key}")
    response = client.post(
        actions_url(sample, "promote"),
        {"mode": "paper", "reason": "via token", "account_label": "paper"},
        format="json",
    )
    assert response.status_code == 201
    assert sample.promotions().get().approver == "tokenholder"


def test_unauthenticated_posts_are_refused_and_write_nothing(sample):
    client = APIClient()
    for action, body in (
        ("promote", {"mode": "paper", "reason": "x"}),
        ("deny", {"mode": "paper", "reason": "x"}),
        ("demote", {"reason": "x"}),
        ("rollback", {"reason": "x"}),
    ):
        response = client.post(actions_url(sample, action), body, format="json")
        assert response.status_code == 401, action
        assert response.json() == error(
            response, "not_authenticated", "Authentication credentials were not provided."
        )
    nothing_written(sample)


def test_a_session_post_without_the_csrf_token_is_refused(sample):
    user = user_with("sessionuser", "approve_promotion")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(
        actions_url(sample, "promote"), {"mode": "paper", "reason": "x"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "CSRF" in response.json()["error"]["message"]
    nothing_written(sample)


def test_a_user_without_the_permission_is_refused_and_nothing_changes(sample, reader):
    for action, body in (
        ("promote", {"mode": "paper", "reason": "x"}),
        ("deny", {"mode": "paper", "reason": "x"}),
        ("demote", {"reason": "x"}),
        ("rollback", {"reason": "x"}),
    ):
        response = reader.post(actions_url(sample, action), body, format="json")
        assert response.status_code == 403, action
        assert response.json() == error(
            response,
            "permission_denied",
            "promotion actions need the permission autonomy.approve_promotion",
        )
    nothing_written(sample)


def test_live_needs_the_live_permission(sample, approver, settings):
    settings.TRADING_LANES = [
        dict(PAPER_LANE),
        {**PAPER_LANE, "label": "live-1", "mode": "live"},
    ]
    response = approver.post(
        actions_url(sample, "promote"), {"mode": "live", "reason": "ramp"}, format="json"
    )
    assert response.status_code == 403
    assert response.json() == error(
        response,
        "permission_denied",
        "approver lacks the permission autonomy.approve_live_promotion",
    )
    nothing_written(sample)


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ({"mode": "paper", "reason": "  "}, 400, "reason_required", "a reason is required"),
        ({"mode": "paper"}, 400, "reason_required", "a reason is required"),
        (
            {"mode": "paper", "reason": "x", "account_label": "nope"},
            409,
            "no_lane",
            "no account lane labelled 'nope'",
        ),
    ],
)
def test_promote_refusals_map_to_status_codes(sample, approver, body, status, code, message):
    response = approver.post(actions_url(sample, "promote"), body, format="json")
    assert response.status_code == status
    assert response.json() == error(response, code, message)
    nothing_written(sample)


def test_an_invalid_mode_is_400_invalid_mode(sample, approver):
    response = approver.post(
        actions_url(sample, "promote"), {"mode": "shadow", "reason": "x"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid_mode",
            "message": "mode must be one of: paper, live",
            "details": {"mode": ['"shadow" is not a valid choice.']},
        },
        "request_id": response["X-Request-ID"],
    }
    deny = approver.post(
        actions_url(sample, "deny"), {"mode": "moon", "reason": "x"}, format="json"
    )
    assert deny.status_code == 400
    assert deny.json()["error"]["message"] == "mode must be one of: shadow, paper, live"
    not_object = approver.post(actions_url(sample, "promote"), ["paper"], format="json")
    assert not_object.status_code == 400
    nothing_written(sample)


def test_live_not_recommended_is_409(sample, settings):
    settings.TRADING_LANES = [
        dict(PAPER_LANE),
        {**PAPER_LANE, "label": "live-1", "mode": "live"},
    ]
    chief = client_for(user_with("chief", "approve_promotion", "approve_live_promotion"))
    response = chief.post(
        actions_url(sample, "promote"),
        {"mode": "live", "reason": "ramp", "account_label": "live-1"},
        format="json",
    )
    assert response.status_code == 409
    assert response.json() == error(
        response,
        "mode_not_recommended",
        f"run {sample.run.run_id} recommends paper, not live",
    )
    nothing_written(sample)


def test_unknown_candidate_action_is_404(sample, approver):
    response = approver.post(
        "/autonomy/candidates/cand-000000000000/promote",
        {"mode": "paper", "reason": "x"},
        format="json",
    )
    assert response.status_code == 404
    assert response.json() == error(
        response, "candidate_not_found", "no candidate cand-000000000000"
    )


def test_deny(sample, approver):
    response = approver.post(
        actions_url(sample, "deny"), {"mode": "paper", "reason": "not yet"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["created"] is True
    assert {
        k: body["promotion"][k]
        for k in ("decision_action", "requested_mode", "approved_mode", "approver", "reason")
    } == {
        "decision_action": "deny",
        "requested_mode": "paper",
        "approved_mode": "",
        "approver": "approver",
        "reason": "not yet",
    }
    assert body["candidate"]["lifecycle_role"] == "challenger"
    assert [p.decision_action for p in sample.promotions()] == ["deny"]
    assert not Strategy.objects.exists()


def test_demote_needs_a_champion_then_disables_the_strategy(sample, approver):
    refused = approver.post(actions_url(sample, "demote"), {"reason": "drift"}, format="json")
    assert refused.status_code == 409
    assert refused.json() == error(
        refused,
        "not_champion",
        f"{sample.candidate.candidate_id} is not a promoted champion",
    )
    nothing_written(sample)

    approver.post(actions_url(sample, "promote"), {"mode": "paper", "reason": "ok"}, format="json")
    response = approver.post(actions_url(sample, "demote"), {"reason": "drift"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["promotion"]["decision_action"], body["promotion"]["account_label"]) == (
        "demote",
        "paper",
    )
    assert (body["candidate"]["lifecycle_role"], body["candidate"]["lifecycle_status"]) == (
        "demoted",
        "standby",
    )
    assert Strategy.objects.get(name=STRATEGY).enabled is False
    assert [p.decision_action for p in sample.promotions()] == ["promote", "demote"]


def test_rollback(sample, approver):
    approver.post(actions_url(sample, "promote"), {"mode": "paper", "reason": "ok"}, format="json")
    response = approver.post(
        actions_url(sample, "rollback"), {"reason": "bad fills"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["promotion"]["decision_action"] == "rollback"
    assert response.json()["promotion"]["reason"] == "bad fills"
    assert Strategy.objects.get(name=STRATEGY).enabled is False
    assert [p.decision_action for p in sample.promotions()] == ["promote", "rollback"]
    empty = approver.post(actions_url(sample, "rollback"), {"reason": ""}, format="json")
    assert empty.status_code == 400
    assert empty.json()["error"]["code"] == "reason_required"


def test_the_schema_describes_every_autonomy_operation(db, reader):
    spec = reader.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    ops = {
        (path, method): set(op["responses"])
        for path, methods in spec["paths"].items()
        if "autonomy" in path
        for method, op in methods.items()
    }
    assert ops == {
        ("/trading/autonomy", "get"): {"200", "401", "403", "429"},
        ("/trading/autonomy/evidence-continuity", "get"): {
            *("200", "400", "401", "403", "404", "429")
        },
        ("/trading/autonomy/evidence-continuity/refresh", "post"): {
            *("201", "400", "401", "403", "429")
        },
        ("/autonomy/runs", "get"): {"200", "400", "401", "403", "429"},
        ("/autonomy/runs/{run_id}", "get"): {"200", "400", "401", "403", "404", "429"},
        ("/autonomy/candidates/{candidate_id}", "get"): {"200", "400", "401", "403", "404", "429"},
        **{
            (f"/autonomy/candidates/{{candidate_id}}/{action}", "post"): {
                "201",
                "400",
                "401",
                "403",
                "404",
                "409",
                "429",
                *(["200"] if action == "promote" else []),
            }
            for action in ("promote", "deny", "demote", "rollback")
        },
    }
    promote = spec["components"]["schemas"]["PromoteInputRequest"]
    enum = spec["components"]["schemas"]["PromoteInputModeEnum"]
    assert (promote["required"], enum["enum"]) == (["mode"], ["paper", "live"])


def test_evidence_continuity_endpoint_reads_and_refresh_is_a_post(reader, run_lane_cmd):
    from autonomy.models import EvidenceContinuityReport

    auditor = client_for(user_with("auditor", "add_evidencecontinuityreport"))
    none_yet = reader.get("/trading/autonomy/evidence-continuity")
    assert none_yet.status_code == 404
    assert none_yet.json()["error"]["code"] == "no_continuity_report"
    first = auditor.post("/trading/autonomy/evidence-continuity/refresh", {}, format="json")
    assert first.status_code == 201
    assert (first.json()["refreshed"], first.json()["runs_checked"]) == (True, 0)
    run_id = run_lane_cmd()["run_id"]
    cached = reader.get("/trading/autonomy/evidence-continuity")
    assert (cached.json()["refreshed"], cached.json()["runs_checked"]) == (False, 0)
    fresh = auditor.post(
        "/trading/autonomy/evidence-continuity/refresh", {"run_limit": 3}, format="json"
    )
    body = fresh.json()
    assert (body["refreshed"], body["passed"], body["run_limit"], body["run_ids"]) == (
        True,
        True,
        3,
        [run_id],
    )
    assert EvidenceContinuityReport.objects.count() == 2
    assert EvidenceContinuityReport.objects.order_by("-pk")[0].report["requested_by"] == "auditor"
    bad = auditor.post(
        "/trading/autonomy/evidence-continuity/refresh", {"run_limit": 51}, format="json"
    )
    assert bad.status_code == 400
    assert EvidenceContinuityReport.objects.count() == 2
