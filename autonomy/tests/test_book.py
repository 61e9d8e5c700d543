"""Multi-strategy research (issue #21, item 3): a strategy config with several enabled strategies
is one candidate, a book evaluated as the strategies traded together under the allocator's caps;
each member is also its own trial; the candidate records which strategies and versions it holds;
a promotion enables every member and a rollback restores every member."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from django.core.management import CommandError

from autonomy.engine.portfolio import AllocatorCaps
from autonomy.lane_inputs import lane_trial_keys
from autonomy.models import ResearchCandidate, ResearchRun, ResearchTrial
from autonomy.policy import load_gate_policy
from autonomy.research_lane import CANDIDATE_SPEC, EVALUATION, PAPER_PATCH
from autonomy.services.promotion import promotion_approve, promotion_rollback
from autonomy.services.research_lane import allocator_caps, lane_execute, policy_inputs
from trading.models import Strategy
from trading.signals.replay import read_signal_rows

from .conftest import SAMPLE_POLICY
from .engine.helpers import signal_rows
from .test_promotion import approver

pytestmark = pytest.mark.django_db

BOOK = """strategies:
  - name: a-one
    type: legacy_macd_rsi
    version: 1.2.0
    enabled: true
    universe_symbols: [AAA]
    params: {buy_rsi_threshold: 45, sell_rsi_threshold: 55}
  - name: b-two
    type: intraday_tsmom
    version: 2.0.1
    enabled: true
    params: {bullish_hist_min: 0.01, min_bull_rsi: 45, max_bull_rsi: 70, vol_ceil: 0.05,
             min_bear_rsi: 40, bearish_hist_min: 0.0}
  - name: c-off
    type: legacy_macd_rsi
    enabled: false
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    signals = tmp_path / "signals.json"
    signals.write_text(json.dumps(signal_rows({"AAA": 5, "BBB": 4}, 400)))
    book = tmp_path / "book.yaml"
    book.write_text(BOOK)
    alone = tmp_path / "alone.yaml"
    alone.write_text(BOOK.split("  - name: b-two")[0])
    return {"signals": signals, "book": book, "alone": alone}


def test_a_book_is_one_candidate_holding_its_strategies_and_versions(run_lane_cmd, files):
    summary = run_lane_cmd(signals=files["signals"], strategy=files["book"], out=None)
    run = ResearchRun.objects.get(run_id=summary["run_id"])
    assert (run.strategy_name, run.strategy_type, run.strategy_version) == (
        "a-one+b-two",
        "portfolio",
        "",
    )
    cand = run.candidates.get()
    held = [
        (s["name"], s["strategy_type"], s["version"]) for s in cand.metadata_bundle["strategies"]
    ]
    assert held == [("a-one", "legacy_macd_rsi", "1.2.0"), ("b-two", "intraday_tsmom", "2.0.1")]
    assert set(cand.parameter_set) == {"a-one", "b-two"}
    out = Path(run.output_dir)
    spec = json.loads((out / CANDIDATE_SPEC).read_text())
    assert [s["name"] for s in spec["runtime_strategies"]] == ["a-one", "b-two"]
    evaluation = json.loads((out / EVALUATION).read_text())
    assert evaluation["strategy"] == "legacy_macd_rsi@1.2.0+intraday_tsmom@2.0.1"
    members = evaluation["members"]
    assert set(members) == {"a-one", "b-two"}
    assert all(m["trade_count"] > 0 for m in members.values())
    # without caps the books are independent: the portfolio's PnL is the members' sum
    total = members["a-one"]["net_pnl"] + members["b-two"]["net_pnl"]
    assert evaluation["whole_period"]["net_pnl"] == pytest.approx(total, rel=1e-6, abs=1e-6)
    # one trial per member, keyed as the lane announced before running
    inputs = _inputs(files, "book")
    assert sorted(ResearchTrial.objects.values_list("trial_key", flat=True)) == sorted(
        lane_trial_keys(inputs)
    )
    assert sorted(ResearchTrial.objects.values_list("strategy_name", flat=True)) == [
        "a-one",
        "b-two",
    ]
    gate8 = next(g for g in run.gate_report["gates"] if g["gate"] == "gate8")
    assert gate8["details"]["trial_count"] == 2  # both families' trials
    if (out / PAPER_PATCH).exists():
        assert "name: a-one" in (out / PAPER_PATCH).read_text()
        assert "name: b-two" in (out / PAPER_PATCH).read_text()


def test_a_member_alone_is_the_same_trial(run_lane_cmd, files, tmp_path):
    run_lane_cmd(signals=files["signals"], strategy=files["book"], out=tmp_path / "book")
    alone = run_lane_cmd(signals=files["signals"], strategy=files["alone"], out=tmp_path / "a")
    assert ResearchTrial.objects.count() == 2  # a-one's trial was already recorded by the book
    row = ResearchTrial.objects.get(strategy_name="a-one")
    assert row.source_ref != alone["run_id"]  # first seen in the book's run


def _inputs(files: dict[str, Path], which: str, policy_path: Path = SAMPLE_POLICY):
    policy, policy_bytes = load_gate_policy(policy_path)
    return policy_inputs(
        signal_rows=read_signal_rows(files["signals"]),
        signals_bytes=files["signals"].read_bytes(),
        strategy_config_bytes=files[which].read_bytes(),
        policy=policy,
        policy_bytes=policy_bytes,
        target="paper",
        approval_token_ok=False,
    )


def test_the_allocator_caps_bound_the_book_and_change_its_run(files, tmp_path, settings):
    free = lane_execute(inputs=_inputs(files, "book"), output_dir=tmp_path / "free")
    caps = AllocatorCaps(strategy_notional={"b-two": 400.0}, symbol_notional={"AAA": 300.0})
    capped_inputs = dataclasses.replace(_inputs(files, "book"), allocator=caps)
    capped = lane_execute(inputs=capped_inputs, output_dir=tmp_path / "capped")
    assert capped.run.run_id != free.run.run_id  # the caps are part of what the run id covers
    free_m = free.outcome.artifacts[EVALUATION]["whole_period"]
    capped_m = capped.outcome.artifacts[EVALUATION]["whole_period"]
    assert capped_m["rejected_count"] > free_m["rejected_count"]
    assert capped_m["traded_notional"] < free_m["traded_notional"]
    # the settings reach the lane only while the allocator flag is on
    settings.TRADING_ALLOCATOR_ENABLED = False
    assert allocator_caps() is None
    settings.TRADING_ALLOCATOR_ENABLED = True
    settings.TRADING_ALLOCATOR_STRATEGY_NOTIONAL_CAPS = {"b-two": 400}
    assert allocator_caps() == AllocatorCaps(strategy_notional={"b-two": 400.0})


def test_promoting_a_book_enables_every_member_and_rollback_restores_them(files, tmp_path):
    # the generated rows start with a warm-up without features (gate 0's null rate)
    lax = tmp_path / "lax.json"
    lax.write_text(json.dumps({"policy_version": "test-lax", "gate0_max_null_rate": 1}))
    lane = lane_execute(inputs=_inputs(files, "book", lax), output_dir=tmp_path / "lane")
    assert lane.outcome.eligible, lane.outcome.recommendation
    cand = ResearchCandidate.objects.get(candidate_id=lane.outcome.candidate_id)
    Strategy.objects.create(name="a-one", strategy_type="legacy_macd_rsi", enabled=False)
    promotion_approve(candidate=cand, mode="paper", actor=approver(), reason="book reviewed")
    rows = {s.name: s for s in Strategy.objects.filter(name__in=["a-one", "b-two"])}
    assert {n: (r.enabled, r.source, r.version) for n, r in rows.items()} == {
        "a-one": (True, "promotion", "1.2.0"),
        "b-two": (True, "promotion", "2.0.1"),
    }
    promotion_rollback(candidate=cand, actor=approver("bob"), reason="undo")
    after = {
        s.name: (s.enabled, s.source) for s in Strategy.objects.filter(name__in=["a-one", "b-two"])
    }
    # a-one as it was before (there, disabled, admin); b-two did not exist: disabled
    assert after == {"a-one": (False, "admin"), "b-two": (False, "promotion")}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "strategies:\n  - {name: x, type: legacy_macd_rsi, enabled: false}\n",
            "no strategy is enabled",
        ),
        (
            "strategies:\n  - {name: x, type: legacy_macd_rsi, enabled: true}\n"
            "  - {name: y, type: intraday_tsmom, enabled: true, base_timeframe: 5Min}\n",
            "mix timeframes",
        ),
    ],
)
def test_configs_a_book_cannot_be_made_of_are_refused_before_recording(
    run_lane_cmd, tmp_path, config, message
):
    path = tmp_path / "bad.yaml"
    path.write_text(config)
    with pytest.raises(CommandError, match=message):
        run_lane_cmd(strategy=path)
    assert ResearchRun.objects.count() == 0
