"""A promotion's evidence holds the strategy's paper fill realism (`fill_realism`), built by the
real promotion service over fills checked against the Alpaca data API stand-in."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from autonomy.models import ResearchCandidate
from autonomy.services.promotion import promotion_approve
from tests.conftest import live_approval_granted
from tests.servers.alpaca_server import AlpacaServer
from trading.services.fill_checks import fill_check_run
from trading.tests.fills.helpers import bar, filled, market_data

from .conftest import SAMPLE_POLICY
from .test_promotion import STRATEGY, approver

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpaca():
    server = AlpacaServer().start()
    yield server
    server.stop()


@pytest.fixture
def live_candidate(run_lane_cmd, settings, tmp_path) -> ResearchCandidate:
    settings.TRADING_FILL_CHECK_PRICE_TOLERANCE_BPS = 0
    return _live_candidate_under(run_lane_cmd, settings, tmp_path)


def test_paper_then_live_promotion_record_the_fill_realism_of_their_window(live_candidate, alpaca):
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=2)
    before = [start, start + timedelta(minutes=1)]
    alpaca.bars = {
        "AAPL": [
            bar(0, "99", "101", 1000, opens=before[0]),
            bar(0, "101", "102", 1000, opens=before[1]),
        ]
    }
    filled(STRATEGY, "AAPL", "buy", "10", "100", minute=0, at=before[0])
    # a sell 1.00 above the high of 102: repriced at the low (101) less 1.00 = 100, cut 30
    filled(STRATEGY, "AAPL", "sell", "10", "103", minute=0, at=before[1])
    filled("another", "AAPL", "buy", "10", "100", minute=0, at=before[0])
    filled(STRATEGY, "AAPL", "buy", "10", "100", minute=0, at=before[0], account_label="live-1")
    assert fill_check_run(market_data=market_data(alpaca)).checked == {
        "ok": 2,
        "price_outside_bar": 1,
    }
    carol = approver("carol", live=True)

    paper = promotion_approve(
        candidate=live_candidate, mode="paper", actor=carol, reason="paper first"
    ).promotion
    assert paper.effective_time is not None

    assert paper.evidence_bundle["fill_realism"] == {
        "strategy": STRATEGY,
        "account_labels": ["paper"],
        "window": {"since": None, "until": paper.effective_time.isoformat()},
        "fills_total": 2,
        "fills_checked": 2,
        "fills_flagged": 1,
        "flagged_by_verdict": {"price_outside_bar": 1},
        "fills_no_bar": 0,
        "fills_unchecked": 0,
        "traded_notional": "2030.000000",
        "haircut_notional": "30.000000",
        # 30 / 2030 x 10000 = 147.783251...
        "haircut_bps": "147.7833",
        "pnl_basis": "realised_average_cost",
        "net_pnl": "30.000000",
        "repriced_net_pnl": "0.000000",
    }

    # on paper: one fill inside its bar, one whose minute has no bar
    after = paper.effective_time + timedelta(microseconds=1)
    alpaca.bars = {"AAPL": [bar(0, "99", "101", 1000, opens=after)]}
    filled(STRATEGY, "AAPL", "buy", "5", "100", minute=0, at=after)
    filled(STRATEGY, "MSFT", "buy", "1", "50", minute=0, at=after)
    checked = fill_check_run(market_data=market_data(alpaca), now=after + timedelta(minutes=10))
    assert checked.checked == {"no_bar": 1, "ok": 1}
    live_approval_granted("live-1")

    live = promotion_approve(
        candidate=live_candidate, mode="live", actor=carol, reason="go live"
    ).promotion
    assert live.effective_time is not None

    block = live.evidence_bundle["fill_realism"]
    assert block["window"] == {
        "since": paper.effective_time.isoformat(),
        "until": live.effective_time.isoformat(),
    }
    assert {k: v for k, v in block.items() if k != "window"} == {
        "strategy": STRATEGY,
        "account_labels": ["paper"],
        "fills_total": 2,
        "fills_checked": 2,
        "fills_flagged": 0,
        "flagged_by_verdict": {},
        "fills_no_bar": 1,
        "fills_unchecked": 0,
        "traded_notional": "550.000000",
        "haircut_notional": "0.000000",
        "haircut_bps": "0.0000",
        "pnl_basis": "realised_average_cost",
        "net_pnl": "0.000000",
        "repriced_net_pnl": "0.000000",
    }


def _live_candidate_under(run_lane_cmd, settings, tmp_path, **requirements) -> ResearchCandidate:
    """A live-recommended candidate whose run's policy sets the live-record requirements."""
    settings.TRADING_LANES = [
        *settings.TRADING_LANES,
        {**settings.TRADING_LANES[0], "label": "live-1", "mode": "live"},
    ]
    settings.TRADING_AUTONOMY_APPROVAL_TOKEN = "tok-123"
    settings.TRADING_LIVE_ENABLED = True
    policy = tmp_path / "live-policy.json"
    policy.write_text(
        json.dumps(
            {
                **json.loads(SAMPLE_POLICY.read_text()),
                "gate5_live_enabled": True,
                **requirements,
            }
        )
    )
    summary = run_lane_cmd(
        "--promotion-target", "live", "--approval-token", "tok-123", policy=policy
    )
    return ResearchCandidate.objects.get(candidate_id=summary["candidate_id"])


def _clean_sessions(days: int, *, first: int = 1) -> None:
    """Clean nightly checks of the strategy for the `days` sessions from `first` days ago."""
    from autonomy.models import ReplayCheck
    from trading.models import Strategy
    from trading.signals.session import NEW_YORK

    today = timezone.now().astimezone(NEW_YORK).date()
    strategy = Strategy.objects.get(name=STRATEGY)
    for back in range(first, first + days):
        ReplayCheck.objects.create(
            session_date=today - timedelta(days=back),
            account_label="paper",
            strategy=strategy,
            status="clean",
        )


def test_live_needs_the_clean_replay_sessions_and_the_fill_haircut_the_run_policy_sets(
    run_lane_cmd, settings, tmp_path, alpaca
):
    from autonomy.services.strategies import PromotionError
    from trading.models import Strategy

    cand = _live_candidate_under(
        run_lane_cmd,
        settings,
        tmp_path,
        promotion_live_min_clean_replay_sessions=2,
        promotion_live_max_fill_haircut_bps=100,
    )
    gate5 = next(g for g in cand.run.gate_report["gates"] if g["gate"] == "gate5")
    assert gate5["details"]["at_promotion"] == {
        "clean_replay_sessions_required": 2,
        "max_fill_haircut_bps": 100.0,
    }
    carol = approver("carol", live=True)
    paper = promotion_approve(candidate=cand, mode="paper", actor=carol, reason="paper first")
    live_approval_granted("live-1")

    def refused(code: str) -> None:
        with pytest.raises(PromotionError) as exc:
            promotion_approve(candidate=cand, mode="live", actor=carol, reason="go live")
        assert exc.value.code == code
        assert "live-1" not in Strategy.objects.get(name=STRATEGY).account_labels

    refused("replay_sessions_insufficient")  # no nightly check yet
    _clean_sessions(1)
    refused("replay_sessions_insufficient")  # one of two
    _clean_sessions(1, first=2)
    # on paper: a sell 1.00 above its bar's high: 30 / 2030 = 147.8 bps > 100
    promoted_at = paper.promotion.effective_time
    assert promoted_at is not None
    after = promoted_at + timedelta(microseconds=1)
    alpaca.bars = {"AAPL": [bar(0, "99", "102", 1000, opens=after)]}
    filled(STRATEGY, "AAPL", "buy", "10", "100", minute=0, at=after)
    filled(STRATEGY, "AAPL", "sell", "10", "103", minute=0, at=after)
    fill_check_run(market_data=market_data(alpaca), now=after + timedelta(minutes=10))
    refused("fill_haircut_above_limit")


def test_live_passes_when_the_live_record_meets_the_run_policy(run_lane_cmd, settings, tmp_path):
    cand = _live_candidate_under(
        run_lane_cmd,
        settings,
        tmp_path,
        promotion_live_min_clean_replay_sessions=1,
        promotion_live_max_fill_haircut_bps=0,
    )
    carol = approver("carol", live=True)
    promotion_approve(candidate=cand, mode="paper", actor=carol, reason="paper first")
    live_approval_granted("live-1")
    _clean_sessions(1)
    live = promotion_approve(candidate=cand, mode="live", actor=carol, reason="go live")
    assert live.promotion.approved_mode == "live"
    assert live.promotion.evidence_bundle["fill_realism"]["haircut_bps"] == "0.0000"
