"""The research ledger's admin: the run review page and the candidate's promotion actions, on a
run recorded by the real lane over the shipped sample inputs."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import QuerySet
from django.test import Client

from autonomy.models import (
    CandidateStage,
    Promotion,
    ResearchCandidate,
    ResearchRun,
)
from tests.conftest import paper_lane
from torghut_site.charts import equity_curve_svg
from torghut_site.storage import ObjectStoreError
from trading.models import Strategy

from .conftest import SAMPLE_ARTIFACTS

pytestmark = pytest.mark.django_db

STRATEGY = "legacy-macd-rsi-v3"  # the sample strategy config's name
PAPER_LANE = paper_lane()


@dataclass(frozen=True)
class Sample:
    """A run the lane recorded on the sample inputs, and the ledger rows it wrote."""

    run: ResearchRun
    candidate: ResearchCandidate
    lane_promotions: frozenset[int]  # the lane's own `hold` audit row(s)

    def promotions(self) -> QuerySet[Promotion]:
        """The promotion rows written since the lane ran (by the actions under test)."""
        return Promotion.objects.exclude(pk__in=self.lane_promotions).order_by("pk")


@pytest.fixture(name="lane_settings")
def lane_settings_fixture(settings, fs_artifacts):
    settings.TRADING_FEATURE_FLAGS_ENABLED = False
    settings.TRADING_LIVE_ENABLED = False
    settings.TRADING_LANES = [dict(PAPER_LANE)]
    return settings


@pytest.fixture(name="sample")
def sample_fixture(lane_settings, run_lane_cmd) -> Sample:
    """`run_autonomous_lane --signals tests/fixtures/walkforward_signals.json --strategy-config
    config/autonomous-strategy-sample.yaml --gate-policy config/autonomous-gate-policy.json
    --output-dir <tmp>`: a passed run recommending paper."""
    summary = run_lane_cmd()
    run = ResearchRun.objects.get(run_id=summary["run_id"])
    return Sample(
        run=run,
        candidate=ResearchCandidate.objects.get(candidate_id=summary["candidate_id"]),
        lane_promotions=frozenset(Promotion.objects.values_list("pk", flat=True)),
    )


def staff(username: str, *codenames: str):
    user = get_user_model().objects.create_user(username, password=f"pw-{username}-123")
    user.is_staff = True
    user.save()
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="autonomy").filter(
            codename__in=[
                "view_researchrun",
                "view_researchcandidate",
                "view_promotion",
                "view_foldmetric",
                "view_stressmetric",
                *codenames,
            ]
        )
    )
    return get_user_model().objects.get(pk=user.pk)  # no stale permission cache


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def approver_client():
    return logged_in(staff("approver", "approve_promotion"))


@pytest.fixture
def viewer_client():
    return logged_in(staff("viewer"))


def candidate_url(candidate: ResearchCandidate, suffix: str = "") -> str:
    return f"/admin/autonomy/researchcandidate/{candidate.pk}/change/{suffix}"


def action_url(candidate: ResearchCandidate, action: str) -> str:
    return f"/admin/autonomy/researchcandidate/{candidate.pk}/actions/{action}/"


def shown_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# ------------------------------------------------------------------ the run page


def test_run_page_shows_recommendation_gates_readiness_artifacts_and_candidate_evidence(
    sample, viewer_client, fs_artifacts
):
    run = sample.run
    candidate = run.candidates.get()
    response = viewer_client.get(f"/admin/autonomy/researchrun/{run.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()

    # recommendation
    assert '<td id="recommendation-action">promote</td>' in html
    assert '<td id="recommendation-eligible">yes</td>' in html
    assert run.recommendation["rationale"] in html
    assert run.recommendation_trace_id in html and run.gate_report_trace_id in html
    # one gate table row group per gate 0-8, with each check's value and threshold
    assert [g["gate"] for g in run.gate_report["gates"]] == [f"gate{i}" for i in range(9)]
    for i in range(9):
        assert f'class="gate-row gate-gate{i}"' in html
    assert "gate1 statistical_robustness" in html
    assert re.search(r"<td>net_pnl</td>\s*<td>0\.88</td>\s*<td>0\.0</td>\s*<td>pass</td>", html), (
        "gate 1's net pnl check with value and threshold"
    )
    assert re.search(r"<td>cost_bps</td>\s*<td>5\.911330049</td>\s*<td>35\.0</td>", html)
    assert "staleness_ms_p95</td>\n        <td>— (not_measured)</td>" in html
    assert re.search(r"<td>feature_schema_version</td>\s*<td>\[&quot;3.0.0&quot;\]</td>", html)
    assert re.search(r"<td>kill_switch_dry_run</td>\s*<td>true</td>\s*<td>true</td>", html)
    assert 'class="gate-status status-skipped">skipped</td>' in html  # gate 5 on a paper target
    assert 'class="gate-status status-not_configured">not_configured</td>' in html  # gate 7
    # readiness dry runs
    assert "<th>killSwitchDryRunPassed</th><td>true</td>" in html
    assert "<th>paper_lane</th><td>paper</td>" in html
    # the 13 artifacts, each with its file:// link under the run's object prefix
    assert sorted(run.artifacts) == SAMPLE_ARTIFACTS
    for path in SAMPLE_ARTIFACTS:
        url = (fs_artifacts.root / "autonomy" / "runs" / run.run_id / path).as_uri()
        assert f"<td>{path}</td>" in html
        assert f'<a href="{url}">open</a>' in html
        assert run.artifacts[path]["sha256"][:16] in html
    # the candidate: folds, the four stress cases, the equity curve as inline SVG
    assert f'<a href="/admin/autonomy/researchcandidate/{candidate.pk}/change/">' in html
    assert "stage policy-dry-run" in html
    assert "<td>0</td><td>autonomous_lane</td>" in html
    assert "<td>0.8800</td>" in html  # net pnl of the fold
    for case in ("spread", "volatility", "liquidity", "halt"):
        assert f"<tr><td>{case}</td>" in html
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="equity-curve"' in html
    assert '<polyline points="' in html
    assert (
        '<text class="y-max" x="90" y="22" text-anchor="end" font-size="11">100,000.88</text>'
        in html
    )
    assert (
        '<text class="y-min" x="90" y="186" text-anchor="end" font-size="11">99,999.94</text>'
        in html
    )
    assert ">2026-01-01 00:01</text>" in html and ">2026-01-01 00:04</text>" in html
    # the folds' gross and net PnL as grouped bars
    assert (
        '<div class="fold-chart"><svg xmlns="http://www.w3.org/2000/svg" class="chart bar-chart"'
        in html
    )
    assert 'data-categories="1" data-bars="2"' in html
    assert "<title>autonomous_lane · gross pnl: 1.00</title>" in html
    assert "<title>autonomous_lane · net pnl: 0.88</title>" in html


def test_run_page_survives_storage_errors(sample, viewer_client, monkeypatch):
    run = sample.run
    manifest = dict(run.artifacts)
    manifest["gates/gate-evaluation.json"] = {
        **manifest["gates/gate-evaluation.json"],
        "storage_error": "storage_upload_failed",
    }
    ResearchRun.objects.filter(pk=run.pk).update(artifacts=manifest)

    def failing_url(key: str, **_: object) -> str:
        raise ObjectStoreError("storage_url_failed", f"{key}: endpoint unreachable")

    monkeypatch.setattr("autonomy.selectors.object_url", failing_url)
    response = viewer_client.get(f"/admin/autonomy/researchrun/{run.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("no link (storage_url_failed)") == 12
    assert html.count("no link (storage_upload_failed)") == 1
    assert "open</a>" not in html


def test_a_running_run_shows_its_progress(lane_settings, viewer_client):
    run = ResearchRun.objects.create(
        run_id="0" * 24, progress_done=2, progress_total=6, progress_label="walk-forward"
    )
    response = viewer_client.get(f"/admin/autonomy/researchrun/{run.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<progress value="2" max="6"></progress>\n    2/6 walk-forward' in html
    assert "No gate report yet." in html
    assert "No recommendation recorded yet." in html
    listing = viewer_client.get("/admin/autonomy/researchrun/?status=running").content.decode()
    assert '<progress value="2" max="6"></progress> 2/6 walk-forward' in listing


# ------------------------------------------------------------------ the equity chart


def test_equity_chart_with_no_point_says_so():
    assert (
        str(equity_curve_svg([])) == '<p class="equity-curve-empty">No equity curve recorded.</p>'
    )
    assert "No equity curve" in str(equity_curve_svg([["2026-01-01T00:00:00+00:00", "nan"]]))


def test_equity_chart_with_one_point_is_a_dot():
    svg = str(equity_curve_svg([["2026-01-01T00:01:00+00:00", 100000.0]]))
    assert '<circle cx="360.0" cy="99.0" r="3" fill="#417690"/>' in svg
    assert "<polyline" not in svg
    assert svg.count(">100,000.00</text>") == 2  # min and max labels
    assert svg.count(">2026-01-01 00:01</text>") == 2


def test_equity_chart_scales_by_time_and_labels_the_axes():
    svg = str(
        equity_curve_svg(
            [
                ["2026-01-01T00:00:00+00:00", 100.0],
                ["2026-01-01T00:01:00+00:00", 50.0],
                ["2026-01-01T00:04:00+00:00", 150.0],
            ]
        )
    )
    # x by time: 0, 1/4, 1 of the 528-px plot from x=96; y from 150 (top, 12) to 50 (bottom, 186)
    assert '<polyline points="96.0,99.0 228.0,186.0 624.0,12.0"' in svg
    assert ">150.00</text>" in svg and ">50.00</text>" in svg
    assert 'aria-label="equity curve, 3 point(s), from 50.00 to 150.00"' in svg


def test_equity_chart_of_a_flat_curve_is_a_line_through_the_middle():
    svg = str(equity_curve_svg([["a", 5], ["b", 5]]))  # not times: spaced by index
    assert '<polyline points="96.0,99.0 624.0,99.0"' in svg
    assert ">a</text>" in svg and ">b</text>" in svg


def test_equity_chart_escapes_its_labels():
    svg = str(equity_curve_svg([["<script>", 1], ["x", 2]]))
    assert "<script>" not in svg and "&lt;script&gt;" in svg


# ------------------------------------------------------------------ candidate actions


def test_candidate_page_shows_stage_promotions_and_only_the_permitted_actions(
    sample, approver_client, viewer_client
):
    candidate = sample.candidate
    page = approver_client.get(candidate_url(candidate)).content.decode()
    assert "policy-dry-run" in page
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="equity-curve"' in page
    labels = re.findall(r'class="candidate-action">([^<]+)</a>', page)
    # demote/rollback only for a champion; live needs the live permission too
    assert labels == ["Approve promotion to paper", "Deny"]
    assert (
        re.findall(
            r'class="candidate-action">',
            viewer_client.get(candidate_url(candidate)).content.decode(),
        )
        == []
    )


def test_approve_paper_with_the_permission_enables_the_strategy_and_appends_a_promotion(
    sample, approver_client
):
    candidate = sample.candidate
    confirm = approver_client.get(action_url(candidate, "approve-paper"))
    assert confirm.status_code == 200
    assert 'name="reason"' in confirm.content.decode()
    assert not sample.promotions().exists()  # a GET never acts

    response = approver_client.post(
        action_url(candidate, "approve-paper"),
        {"reason": "folds and stress reviewed", "account_label": ""},
        follow=True,
    )
    assert response.redirect_chain == [(candidate_url(candidate), 302)]
    message = f"Promoted {candidate.candidate_id} to paper on lane paper: folds and stress reviewed"
    assert shown_messages(response) == [message]

    strategy = Strategy.objects.get(name=STRATEGY)
    assert (strategy.enabled, strategy.account_labels, strategy.source) == (
        True,
        ["paper"],
        "promotion",
    )
    assert strategy.strategy_type == "legacy_macd_rsi"
    promotion = sample.promotions().get()
    assert (
        promotion.candidate_id,
        promotion.decision_action,
        promotion.requested_mode,
        promotion.approved_mode,
        promotion.account_label,
        promotion.approver,
        promotion.approver_role,
        promotion.reason,
    ) == (
        candidate.pk,
        "promote",
        "paper",
        "paper",
        "paper",
        "approver",
        "operator",
        "folds and stress reviewed",
    )
    candidate.refresh_from_db()
    assert (candidate.lifecycle_role, candidate.lifecycle_status) == ("champion", "active")
    assert (
        CandidateStage.objects.get(candidate_id=candidate.candidate_id).active_stage
        == "shadow-paper"
    )
    entry = LogEntry.objects.get()
    assert (entry.object_id, entry.action_flag, entry.change_message, entry.user_id) == (
        str(candidate.pk),
        CHANGE,
        message,
        get_user_model().objects.get(username="approver").pk,
    )
    # the history is on the candidate's page; a champion now offers demote and roll back
    page = response.content.decode()
    assert "folds and stress reviewed" in page
    assert re.findall(r'class="candidate-action">([^<]+)</a>', page) == [
        "Approve promotion to paper",
        "Deny",
        "Demote",
        "Roll back",
    ]

    again = approver_client.post(
        action_url(candidate, "approve-paper"), {"reason": "again"}, follow=True
    )
    assert shown_messages(again) == [
        f"{candidate.candidate_id} was already promoted to paper on lane paper: nothing changed"
    ]
    assert sample.promotions().count() == 1


def test_approve_without_the_permission_is_refused_and_changes_nothing(sample, viewer_client):
    candidate = sample.candidate
    response = viewer_client.post(
        action_url(candidate, "approve-paper"), {"reason": "I want it live"}
    )
    assert response.status_code == 200
    assert shown_messages(response) == [
        "Approve promotion to paper refused (permission_denied): "
        "viewer lacks the permission autonomy.approve_promotion"
    ]
    assert "it will be refused" in response.content.decode()
    assert not sample.promotions().exists()
    assert not Strategy.objects.filter(name=STRATEGY).exists()
    assert not LogEntry.objects.exists()
    candidate.refresh_from_db()
    assert candidate.lifecycle_role == "challenger"
    assert (
        CandidateStage.objects.get(candidate_id=candidate.candidate_id).active_stage
        == "policy-dry-run"
    )


def test_an_action_needs_a_reason(sample, approver_client):
    candidate = sample.candidate
    response = approver_client.post(action_url(candidate, "approve-paper"), {"reason": "   "})
    assert response.status_code == 200
    assert response.context["form"].errors == {"reason": ["This field is required."]}
    assert not sample.promotions().exists()
    assert not Strategy.objects.exists()


def test_live_is_refused_without_a_live_lane_and_changes_nothing(sample):
    candidate = sample.candidate
    client = logged_in(staff("chief", "approve_promotion", "approve_live_promotion"))
    page = client.get(candidate_url(candidate)).content.decode()
    assert "Approve promotion to live" in page
    response = client.post(action_url(candidate, "approve-live"), {"reason": "ramp it"})
    assert shown_messages(response) == [
        "Approve promotion to live refused (no_lane): no enabled live account lane is configured"
    ]
    assert not sample.promotions().exists()
    assert not Strategy.objects.exists()


def test_deny_appends_a_denial(sample, approver_client):
    candidate = sample.candidate
    confirm = approver_client.get(action_url(candidate, "deny")).content.decode()
    assert '<option value="paper" selected>paper</option>' in confirm  # the recommended mode
    response = approver_client.post(
        action_url(candidate, "deny"), {"reason": "too few trades", "mode": "paper"}, follow=True
    )
    assert shown_messages(response) == [
        f"Denied the promotion of {candidate.candidate_id} to paper: too few trades"
    ]
    promotion = sample.promotions().get()
    assert (promotion.decision_action, promotion.requested_mode, promotion.approved_mode) == (
        "deny",
        "paper",
        "",
    )
    assert (promotion.approver, promotion.reason) == ("approver", "too few trades")
    assert not Strategy.objects.exists()
    assert LogEntry.objects.get().change_message == shown_messages(response)[0]


def test_demote_a_champion_disables_its_strategy(sample, approver_client):
    candidate = sample.candidate
    refused = approver_client.post(action_url(candidate, "demote"), {"reason": "drift"})
    assert shown_messages(refused) == [
        f"Demote refused (not_champion): {candidate.candidate_id} is not a promoted champion"
    ]
    assert not sample.promotions().exists()

    approver_client.post(action_url(candidate, "approve-paper"), {"reason": "ok"}, follow=True)
    response = approver_client.post(
        action_url(candidate, "demote"), {"reason": "drift detected"}, follow=True
    )
    assert shown_messages(response) == [f"Demoted {candidate.candidate_id}: drift detected"]
    assert Strategy.objects.get(name=STRATEGY).enabled is False
    assert list(sample.promotions().values_list("decision_action", flat=True)) == [
        "promote",
        "demote",
    ]
    candidate.refresh_from_db()
    assert (candidate.lifecycle_role, candidate.lifecycle_status) == ("demoted", "standby")
    assert (
        CandidateStage.objects.get(candidate_id=candidate.candidate_id).active_stage
        == "incident-recovery"
    )


def test_rollback_restores_the_strategy_as_it_was(sample, approver_client):
    candidate = sample.candidate
    approver_client.post(action_url(candidate, "approve-paper"), {"reason": "ok"}, follow=True)
    response = approver_client.post(
        action_url(candidate, "rollback"), {"reason": "bad fills"}, follow=True
    )
    assert shown_messages(response) == [f"Rolled back {candidate.candidate_id}: bad fills"]
    # there was no strategy row before the promotion: the one it created is disabled
    assert Strategy.objects.get(name=STRATEGY).enabled is False
    rollback = sample.promotions().last()
    assert (rollback.decision_action, rollback.account_label, rollback.reason) == (
        "rollback",
        "paper",
        "bad fills",
    )
    assert LogEntry.objects.count() == 2


def test_actions_are_csrf_protected(sample):
    candidate = sample.candidate
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff("approver", "approve_promotion"))
    response = client.post(action_url(candidate, "approve-paper"), {"reason": "no token"})
    assert response.status_code == 403
    assert not sample.promotions().exists()
    assert not Strategy.objects.exists()


def test_unknown_action_or_candidate_is_404(sample, approver_client):
    candidate = sample.candidate
    assert approver_client.get(action_url(candidate, "promote-everything")).status_code == 404
    assert (
        approver_client.post(
            "/admin/autonomy/researchcandidate/999999/actions/deny/",
            {"reason": "x", "mode": "paper"},
        ).status_code
        == 404
    )
    assert not sample.promotions().exists()


def test_promotions_are_read_only_with_action_and_mode_filters(sample, approver_client):
    candidate = sample.candidate
    approver_client.post(action_url(candidate, "approve-paper"), {"reason": "ok"}, follow=True)
    approver_client.post(action_url(candidate, "deny"), {"reason": "second look", "mode": "live"})
    listing = approver_client.get("/admin/autonomy/promotion/?decision_action__exact=deny")
    assert listing.status_code == 200
    assert [p.reason for p in listing.context["cl"].result_list] == ["second look"]
    by_mode = approver_client.get("/admin/autonomy/promotion/?approved_mode__exact=paper")
    assert [p.decision_action for p in by_mode.context["cl"].result_list] == ["promote"]
    assert approver_client.get("/admin/autonomy/promotion/add/").status_code == 403
    promotion = Promotion.objects.get(decision_action="promote")
    page = approver_client.get(f"/admin/autonomy/promotion/{promotion.pk}/change/")
    assert page.status_code == 200
    assert (page.context["has_change_permission"], page.context["has_delete_permission"]) == (
        False,
        False,
    )


def test_candidate_list_shows_each_stage_without_a_query_per_row(
    sample, viewer_client, django_assert_max_num_queries
):
    CandidateStage.objects.filter(candidate_id=sample.candidate.candidate_id).update(paused=True)
    for n in range(5):
        other = ResearchCandidate.objects.create(
            run=ResearchRun.objects.create(run_id=f"{n:024d}"),
            candidate_id=f"cand-{n:012d}",
            candidate_hash="0" * 64,
            strategy_name=f"other-{n}",
            strategy_type="legacy_macd_rsi",
            promotion_target="paper",
        )
        CandidateStage.objects.create(
            candidate_id=other.candidate_id, active_stage="gate-evaluation"
        )
    with django_assert_max_num_queries(8):
        listing = viewer_client.get("/admin/autonomy/researchcandidate/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert '<td class="field-stage_view">policy-dry-run (paused)</td>' in html
    assert html.count('<td class="field-stage_view">gate-evaluation</td>') == 5


def test_drift_checks_and_continuity_reports_are_listed_read_only(sample):
    from autonomy.services.governance import evidence_continuity_check

    evidence_continuity_check()
    client = logged_in(get_user_model().objects.create_superuser("root", password="pw-root-123"))
    drift = client.get("/admin/autonomy/driftcheck/")
    assert drift.status_code == 200
    assert [c.run.run_id for c in drift.context["cl"].result_list] == [sample.run.run_id]
    continuity = client.get("/admin/autonomy/evidencecontinuityreport/?passed__exact=1")
    assert [r.runs_checked for r in continuity.context["cl"].result_list] == [1]
    assert client.get("/admin/autonomy/driftcheck/add/").status_code == 403
