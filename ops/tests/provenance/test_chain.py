"""Provenance from paper to order, built through the real services: a whitepaper run from a GitHub
issue (PDF host, RGW, Jangar stand-in), a research lane run, a paper promotion approved through
`autonomy.services.promotion`, trade cycles on the simulated broker, the agent's finalize naming
the candidate; then the chain both ways, and the admin pages with their permissions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from autonomy.models import Promotion, ResearchCandidate
from autonomy.services.promotion import promotion_approve
from autonomy.tests.conftest import SAMPLE_ARTIFACTS
from autonomy.tests.test_promotion import approver
from ops.provenance import (
    OrderNode,
    WhitepaperRunNode,
    decision_provenance,
    whitepaper_provenance,
)
from tests.conftest import use_replay_trading
from trading.models import Execution, Strategy, TradeCursor, TradeDecision
from trading.services.cycle import trading_cycle_run
from trading.tests.cycle.conftest import REPLAY_START
from whitepapers.models import CANDIDATE_ID_PATTERN, WhitepaperRunCandidateLink
from whitepapers.tests.pdfs import make_pdf
from whitepapers.tests.test_workflow import PAPER, post_event
from whitepapers.tests.workflow import issue_payload

pytestmark = [pytest.mark.django_db, pytest.mark.services]

PROMOTED = "legacy-macd-rsi-v3"  # the sample candidate's strategy
UNRESOLVED = "cand-00000000beef"  # a candidate the agent names that the ledger does not hold
ADMIN = "/admin/ops/processheartbeat/provenance"


@dataclass
class Built:
    wp_run_id: str
    candidate: ResearchCandidate
    promotion: Promotion
    before: TradeDecision  # the catalog strategy's decision, before the promotion
    catalog: TradeDecision  # the catalog strategy's decision after it
    promoted: TradeDecision  # the promoted strategy's decision


def _cycle(seconds: int) -> None:
    trading_cycle_run(account_label="paper", now=REPLAY_START + timedelta(seconds=seconds))


@pytest.fixture
def built(
    settings, signals_file, run_lane_cmd, workflow, control, django_capture_on_commit_callbacks
) -> Built:
    use_replay_trading(settings, signals_file)
    url = workflow.host.put("momentum.pdf", PAPER)
    response = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)
    wp_run_id = response.json()["run_id"]
    Strategy.objects.create(
        name="macd",
        strategy_type="legacy_macd_rsi",
        enabled=True,
        max_notional_per_trade=Decimal(1000),
        params={"buy_rsi_threshold": 35, "sell_rsi_threshold": 65},
        source="catalog",
    )
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    _cycle(30)  # AAPL: the catalog strategy only
    candidate = ResearchCandidate.objects.get(candidate_id=run_lane_cmd()["candidate_id"])
    promotion = promotion_approve(
        candidate=candidate, mode="paper", actor=approver(), reason="reviewed"
    ).promotion
    _cycle(90)  # MSFT: both strategies
    agent = workflow.agent(wp_run_id)
    finalized = agent.post(
        f"/whitepapers/runs/{wp_run_id}/finalize",
        {"status": "completed", "candidate_ids": [candidate.candidate_id, UNRESOLVED]},
        format="json",
    )
    assert finalized.status_code == 200
    decisions = TradeDecision.objects.select_related("strategy")
    return Built(
        wp_run_id=wp_run_id,
        candidate=candidate,
        promotion=promotion,
        before=decisions.get(strategy__name="macd", symbol="AAPL"),
        catalog=decisions.get(strategy__name="macd", symbol="MSFT"),
        promoted=decisions.get(strategy__name=PROMOTED),
    )


def _order(execution: Execution) -> OrderNode:
    return OrderNode(
        pk=execution.pk,
        broker="simulated",
        broker_order_id=execution.broker_order_id,
        client_order_id=execution.client_order_id,
        side=execution.side,
        status=execution.status,
        submitted_qty=execution.submitted_qty,
        filled_qty=execution.filled_qty,
        avg_fill_price=execution.avg_fill_price,
    )


def test_the_chain_from_a_decision_reaches_the_paper(built: Built):
    decision = built.promoted
    assert (decision.symbol, decision.action, decision.status) == ("MSFT", "buy", "submitted")
    chain = decision_provenance(decision_id=decision.pk)
    execution = Execution.objects.get(decision=decision)
    assert chain.decision.orders == [_order(execution)]
    assert execution.client_order_id == decision.client_order_id
    assert (chain.decision.strategy_version, chain.decision.promotion_ref) == (
        "1.0.0",
        built.promotion.pk,
    )
    assert (chain.strategy.name, chain.strategy.source, chain.strategy.promotion_ref) == (
        PROMOTED,
        "promotion",
        built.promotion.pk,
    )
    assert chain.strategy.promotion_candidate_id == built.candidate.candidate_id
    promotion = chain.promotion
    assert promotion is not None
    assert (promotion.pk, promotion.decision_action, promotion.approved_mode) == (
        built.promotion.pk,
        "promote",
        "paper",
    )
    assert (promotion.approver, promotion.account_label, promotion.reason) == (
        "alice",
        "paper",
        "reviewed",
    )
    assert promotion.evidence_keys == [
        "fill_realism",
        "gate_report_trace_id",
        "overfitting",
        "previous_champion",
        "previous_strategies",
        "previous_strategy",
        "recommendation",
    ]
    assert chain.promotion_unresolved is False
    candidate = chain.candidate
    assert candidate is not None
    run = built.candidate.run
    assert (candidate.candidate_id, candidate.run.run_id) == (
        built.candidate.candidate_id,
        run.run_id,
    )
    assert [(g.gate, g.status) for g in candidate.run.gates] == [
        (g["gate"], g["status"]) for g in run.gate_report["gates"]
    ]
    assert candidate.run.gates_allowed is True
    assert [path for path, _ in candidate.run.artifacts] == SAMPLE_ARTIFACTS
    assert candidate.run.artifacts[0][1] == run.artifacts[SAMPLE_ARTIFACTS[0]]["sha256"]
    assert (candidate.fold_count, candidate.stress_count) == (
        built.candidate.fold_metrics.count(),
        4,
    )
    run_row = chain.whitepaper_runs[0]
    assert chain.whitepaper_runs == [
        WhitepaperRunNode(
            pk=run_row.pk,
            run_id=built.wp_run_id,
            status="completed",
            document_key=run_row.document_key,
            source_identifier="proompteng/lab#42",
            title=run_row.title,
            verdict="",
            link_source="finalize",
            linked_by=f"agentrun:{built.wp_run_id}#1",
        )
    ]
    assert chain.whitepaper_runs_more == 0


@pytest.mark.parametrize("which", ["before", "catalog"])
def test_a_catalog_decision_or_one_before_the_promotion_names_no_promotion(built: Built, which):
    decision = getattr(built, which)
    chain = decision_provenance(decision_id=decision.pk)
    assert (chain.decision.strategy_version, chain.decision.promotion_ref) == ("1.0.0", None)
    assert (chain.promotion, chain.promotion_unresolved, chain.candidate) == (None, False, None)
    assert chain.whitepaper_runs == []
    assert chain.strategy.source == "catalog"


def test_the_chain_from_a_whitepaper_run_reaches_the_orders(built: Built):
    chain = whitepaper_provenance(run_id=built.wp_run_id)
    assert (chain.run.run_id, chain.run.status, chain.links_more) == (
        built.wp_run_id,
        "completed",
        0,
    )
    assert [(x.candidate_id, x.source) for x in chain.links] == [
        (built.candidate.candidate_id, "finalize"),
        (UNRESOLVED, "finalize"),
    ]
    found, unresolved = chain.links
    assert (unresolved.candidate, unresolved.promotions) == (None, [])
    assert found.candidate is not None
    assert found.candidate.run.run_id == built.candidate.run.run_id
    # the lane's own hold, then the approval
    assert [(p.promotion.decision_action, p.decisions) for p in found.promotions][0] == ("hold", [])
    promoted = found.promotions[1]
    assert promoted.promotion.pk == built.promotion.pk
    assert promoted.strategy is not None
    assert (promoted.strategy.name, promoted.strategy_carries_it) == (PROMOTED, True)
    assert [d.pk for d in promoted.decisions] == [built.promoted.pk]
    assert promoted.decisions_more == 0
    execution = Execution.objects.get(decision=built.promoted)
    assert promoted.decisions[0].orders == [_order(execution)]
    assert promoted.decisions[0].strategy_version == "1.0.0"


def test_lane_candidate_ids_have_the_shape_whitepapers_accepts(built: Built):
    assert re.fullmatch(CANDIDATE_ID_PATTERN, built.candidate.candidate_id)


# ------------------------------------------------------------------ admin


def _staff(name: str, *perms: str) -> Any:
    user = get_user_model().objects.create_user(name, password="pw-12345", is_staff=True)
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    return get_user_model().objects.get(pk=user.pk)


VIEWER = (
    "trading.view_tradedecision",
    "autonomy.view_promotion",
    "whitepapers.view_whitepaperanalysisrun",
)


def _client(user: Any | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_admin_pages_walk_the_chain_for_a_permitted_user(built: Built):
    viewer = _client(_staff("viewer", *VIEWER, "whitepapers.change_whitepaperanalysisrun"))
    decision_url = f"{ADMIN}/decision/{built.promoted.pk}/"
    run_url = f"{ADMIN}/whitepaper/{built.wp_run_id}/"
    page = viewer.get(decision_url)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'<span class="promotion-pk">{built.promotion.pk}</span>' in html
    assert built.candidate.candidate_id in html and built.wp_run_id in html
    assert 'id="decision-strategy-version">1.0.0<' in html
    before = viewer.get(f"{ADMIN}/decision/{built.before.pk}/").content.decode()
    assert 'id="no-promotion"' in before and built.candidate.candidate_id not in before
    run_page = viewer.get(run_url)
    assert run_page.status_code == 200
    run_html = run_page.content.decode()
    assert f'id="decision-{built.promoted.pk}"' in run_html
    assert 'class="errornote unresolved"' in run_html and UNRESOLVED in run_html
    assert viewer.get(f"{ADMIN}/decision/999999/").status_code == 404

    # the change pages link to the chains (ops' template overrides)
    root = _client(get_user_model().objects.create_superuser("root", password="pw-1"))
    change = root.get(f"/admin/trading/tradedecision/{built.promoted.pk}/change/")
    assert change.status_code == 200
    assert f'href="{decision_url}"' in change.content.decode()
    run_pk = WhitepaperRunCandidateLink.objects.filter(candidate_id=UNRESOLVED).get().run_id
    wp_change = root.get(f"/admin/whitepapers/whitepaperanalysisrun/{run_pk}/change/")
    assert wp_change.status_code == 200
    assert f'href="{run_url}"' in wp_change.content.decode()
    assert f'href="{run_url}link/"' in wp_change.content.decode()


@pytest.mark.parametrize(
    ("perms", "status"),
    [
        (None, 302),  # anonymous: to the login page
        ((), 403),  # staff without a permission
        (("trading.view_tradedecision",), 403),  # one app of the three
        (VIEWER[:2], 403),
    ],
)
def test_admin_pages_refuse_without_the_permissions(built: Built, perms, status):
    user = None if perms is None else _staff("someone", *perms)
    client = _client(user)
    for url in (f"{ADMIN}/decision/{built.promoted.pk}/", f"{ADMIN}/whitepaper/{built.wp_run_id}/"):
        response = client.get(url)
        assert response.status_code == status, url
        if status == 302:
            assert response["Location"].startswith("/admin/login/")


# ------------------------------------------------------------------ the admin link form


def _second_run(control, capture, workflow) -> str:
    url = workflow.host.put("other.pdf", make_pdf(["Mean reversion after earnings"]))
    response = post_event(control, issue_payload(url=url, number=43), capture)
    return str(response.json()["run_id"])


def test_the_link_form_links_known_candidates_only(
    built: Built, workflow, control, django_capture_on_commit_callbacks
):
    run_id = _second_run(control, django_capture_on_commit_callbacks, workflow)
    assert run_id != built.wp_run_id
    link_url = f"{ADMIN}/whitepaper/{run_id}/link/"
    operator = _client(_staff("op", *VIEWER, "whitepapers.change_whitepaperanalysisrun"))
    assert operator.get(link_url).status_code == 200
    cand = built.candidate.candidate_id

    for bad, message in (
        (f"{cand}, {UNRESOLVED}", f"no research candidate with the id(s) {UNRESOLVED}"),
        ("cand-XYZ", "is not a candidate id"),
        ("  ", "This field is required."),
    ):
        page = operator.post(link_url, {"candidate_ids": bad})
        assert page.status_code == 200
        assert message in str(page.context["form"].errors["candidate_ids"])
    assert not WhitepaperRunCandidateLink.objects.filter(run__run_id=run_id).exists()

    done = operator.post(link_url, {"candidate_ids": f"{cand}\n{cand}"})
    assert (done.status_code, done["Location"]) == (302, f"{ADMIN}/whitepaper/{run_id}/")
    link = WhitepaperRunCandidateLink.objects.get(run__run_id=run_id)
    assert (link.candidate_id, link.source, link.linked_by) == (cand, "admin", "op")
    # the decision's chain now names both runs that link to its candidate, in link order
    chain = decision_provenance(decision_id=built.promoted.pk)
    assert [(w.run_id, w.link_source, w.linked_by) for w in chain.whitepaper_runs] == [
        (built.wp_run_id, "finalize", f"agentrun:{built.wp_run_id}#1"),
        (run_id, "admin", "op"),
    ]
    from django.contrib.admin.models import LogEntry

    entry = LogEntry.objects.get(object_repr__contains=run_id)
    assert entry.get_change_message() == f"Linked research candidates: {cand}"


def test_the_link_form_needs_the_run_change_permission(
    built: Built, workflow, control, django_capture_on_commit_callbacks
):
    run_id = _second_run(control, django_capture_on_commit_callbacks, workflow)
    assert run_id != built.wp_run_id
    link_url = f"{ADMIN}/whitepaper/{run_id}/link/"
    viewer = _client(_staff("viewer", *VIEWER))
    assert viewer.get(link_url).status_code == 403
    posted = viewer.post(link_url, {"candidate_ids": built.candidate.candidate_id})
    assert posted.status_code == 403
    assert _client(None).post(link_url, {"candidate_ids": "x"}).status_code == 302
    assert not WhitepaperRunCandidateLink.objects.filter(run__run_id=run_id).exists()
    # the run's page offers no link button to a viewer who may not link
    page = viewer.get(f"{ADMIN}/whitepaper/{run_id}/").content.decode()
    assert 'id="no-links"' in page and link_url not in page


def test_long_lists_are_bounded_with_a_count_of_the_rest(built: Built):
    from ops.provenance import MAX_DECISIONS

    source = built.promoted
    for n in range(MAX_DECISIONS + 2):
        TradeDecision.objects.create(
            strategy=source.strategy,
            strategy_version=source.strategy_version,
            promotion_ref=source.promotion_ref,
            account_label="paper",
            symbol="MSFT",
            timeframe="1Min",
            event_ts=source.event_ts + timedelta(minutes=n + 1),
            action="buy",
            qty=Decimal(1),
            decision_hash=f"{n:064x}",
            client_order_id=f"tg-extra-{n}",
            status="rejected",
            reject_reason="test_extra",
        )
    found = whitepaper_provenance(run_id=built.wp_run_id).links[0]
    promoted = found.promotions[1]
    assert (len(promoted.decisions), promoted.decisions_more) == (MAX_DECISIONS, 3)
    # newest first: the latest extra decisions, the real one among those not shown
    assert [d.client_order_id for d in promoted.decisions][:2] == ["tg-extra-11", "tg-extra-10"]
