"""`manage.py backtest` over a signal file, a replay of the recorded signals and a ClickHouse range
(the real ClickHouse engine behind its HTTP interface), with its artifacts and its trial."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from autonomy.models import ResearchTrial
from autonomy.tests.engine.helpers import signal_rows
from trading.models import TaSignal
from trading.tests.signals.conftest import ch, clickhouse_server  # noqa: F401

pytestmark = pytest.mark.django_db

STRATEGY = b"""strategies:
  - name: macd-bt
    type: legacy_macd_rsi
    version: 1.0.0
    enabled: true
    base_timeframe: 1Min
    params:
      buy_rsi_threshold: 45
      sell_rsi_threshold: 55
  - name: macd-off
    type: legacy_macd_rsi
    version: 1.0.0
    enabled: false
    base_timeframe: 1Min
    params: {}
"""
FROM, TO = "2026-03-03T14:30:00Z", "2026-03-03T17:00:00Z"


@pytest.fixture
def rows():
    return signal_rows({"AAPL": 1, "MSFT": 2}, 150)


@pytest.fixture
def inputs(tmp_path, rows):
    config = tmp_path / "strategy.yaml"
    config.write_bytes(STRATEGY)
    signals = tmp_path / "signals.json"
    signals.write_text(json.dumps(rows))
    return config, signals


def backtest(*args: str) -> str:
    out = StringIO()
    call_command("backtest", *args, "--no-progress", stdout=out)
    return out.getvalue()


def report_of(out_dir: Path) -> dict:
    return dict(json.loads((out_dir / "backtest" / "report.json").read_bytes()))


def test_signal_file_prints_metrics_writes_artifacts_records_the_trial(inputs, tmp_path):
    config, signals = inputs
    out_dir = tmp_path / "out"
    args = ["--strategy-config", str(config), "--signals", str(signals), "--folds", "3"]
    text = backtest(*args, "--output-dir", str(out_dir))
    lines = text.splitlines()
    assert lines[0].startswith("macd-bt (legacy_macd_rsi@1.0.0) {")
    assert lines[1].split() == [
        "fold", "rows", "net_pnl", "trades", "decisions", "max_drawdown", "cost_bps"
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[2:6]] == ["fold-1", "fold-2", "fold-3", "total"]
    assert lines[6].startswith("sharpe_ratio ") and "trial_count 1" in lines[6]
    trial = ResearchTrial.objects.get()
    assert lines[7] == f"trial {trial.trial_key} (recorded)"
    assert (trial.source, trial.family, trial.strategy_name) == ("backtest", "legacy_macd_rsi",
                                                                 "macd-bt")  # fmt: skip
    report = report_of(out_dir)
    [setting] = report["settings"]
    assert setting["trial_key"] == trial.trial_key
    assert trial.net_pnl == pytest.approx(setting["net_pnl"])
    assert trial.params == {"buy_rsi_threshold": 45, "sell_rsi_threshold": 55}
    manifest = json.loads((out_dir / "manifest.json").read_bytes())
    data = (out_dir / "backtest" / "report.json").read_bytes()
    assert manifest == {"artifacts": {"backtest/report.json": hashlib.sha256(data).hexdigest()}}
    # the same backtest again: the same trial, counted once; the same bytes
    again = backtest(*args, "--output-dir", str(out_dir))
    assert again.splitlines()[7] == f"trial {trial.trial_key} (already recorded)"
    assert (out_dir / "backtest" / "report.json").read_bytes() == data
    assert ResearchTrial.objects.count() == 1
    # a sweep whose grid holds this very setting on the same folds: the same trial again
    call_command(
        "sweep", "--strategy-config", str(config), "--signals", str(signals), "--folds", "3",
        "--grid", "buy_rsi_threshold=45,30", "--no-progress", stdout=StringIO(),
    )  # fmt: skip
    assert ResearchTrial.objects.count() == 2
    assert ResearchTrial.objects.get(trial_key=trial.trial_key).source == "backtest"


def test_params_and_cpcv(inputs, tmp_path):
    config, signals = inputs
    out_dir = tmp_path / "cpcv"
    text = backtest(
        "--strategy-config", str(config), "--strategy", "macd-off", "--signals", str(signals),
        "--params", "buy_rsi_threshold=40", "sell_rsi_threshold=60.5", "--fold-plan", "cpcv",
        "--folds", "4", "--test-groups", "2", "--purge", "2", "--embargo", "1",
        "--output-dir", str(out_dir),
    )  # fmt: skip
    report = report_of(out_dir)
    assert report["spec"]["plan"] == {
        "kind": "cpcv", "groups": 4, "test_groups": 2, "purge": 2, "embargo": 1
    }  # fmt: skip
    [setting] = report["settings"]
    assert setting["params"] == {"buy_rsi_threshold": 40, "sell_rsi_threshold": 60.5}
    assert [f["fold"] for f in setting["folds"]] == [
        "split-1-2", "split-1-3", "split-1-4", "split-2-3", "split-2-4", "split-3-4"
    ]  # fmt: skip
    assert len(setting["paths"]) == 3
    assert "split-1-3" in text
    trial = ResearchTrial.objects.get()
    assert (trial.window_start_row, trial.window_stop_row) == (0, report["spec"]["rows"])


def net_pnl(out_dir: Path) -> float:
    return float(report_of(out_dir)["settings"][0]["net_pnl"])


def test_replay_of_the_recorded_signals_matches_the_file(inputs, rows, tmp_path):
    config, signals = inputs
    backtest("--strategy-config", str(config), "--signals", str(signals),
             "--output-dir", str(tmp_path / "file"))  # fmt: skip
    TaSignal.objects.bulk_create(
        TaSignal(
            event_ts=datetime.fromisoformat(r["event_ts"]),
            symbol=r["symbol"],
            seq=r["seq"],
            row=r,
            source_topic="ta",
            source_partition=0,
            source_offset=i,
            received_at=timezone.now(),
        )
        for i, r in enumerate(rows)
    )
    backtest("--strategy-config", str(config), "--replay", FROM, TO,
             "--output-dir", str(tmp_path / "replay"))  # fmt: skip
    file_rows = report_of(tmp_path / "file")["spec"]["rows"]
    assert 0 < file_rows < len(rows)  # the rows before the indicators are warm are invalid
    assert report_of(tmp_path / "replay")["spec"]["rows"] == file_rows
    assert report_of(tmp_path / "replay")["spec"]["signal_source"] == "replay"
    assert net_pnl(tmp_path / "replay") == pytest.approx(net_pnl(tmp_path / "file"), abs=1e-6)
    # a narrower range: fewer rows
    backtest("--strategy-config", str(config), "--replay", FROM, "2026-03-03T15:00:00Z",
             "--output-dir", str(tmp_path / "narrow"))  # fmt: skip
    assert 0 < report_of(tmp_path / "narrow")["spec"]["rows"] < file_rows


def test_clickhouse_range_matches_the_file(inputs, rows, tmp_path, ch, settings):  # noqa: F811
    config, signals = inputs
    backtest("--strategy-config", str(config), "--signals", str(signals),
             "--output-dir", str(tmp_path / "file"))  # fmt: skip
    features = sorted(
        {k for r in rows for k in r} - {"event_ts", "symbol", "seq", "timeframe", "price"}
    )
    ch.execute(
        f"CREATE TABLE {ch.database}.flat (event_ts DateTime64(3, 'UTC'), symbol String, "
        "seq UInt32, timeframe String, price Float64, "
        + ", ".join(f"{k} Nullable(Float64)" for k in features)
        + ") ENGINE = MergeTree ORDER BY (event_ts, symbol, seq)"
    )
    body = "\n".join(
        json.dumps(
            {**r, "event_ts": r["event_ts"][:19].replace("T", " "), "price": float(r["price"])}
        )
        for r in rows
    )
    ch.execute(f"INSERT INTO {ch.database}.flat FORMAT JSONEachRow {body}")
    settings.TA_CLICKHOUSE_URL = ch.url
    settings.TRADING_SIGNAL_TABLE = f"{ch.database}.flat"
    settings.TA_CLICKHOUSE_USERNAME = "torghut"
    settings.TA_CLICKHOUSE_PASSWORD = "s3cret"
    settings.TRADING_SIGNAL_SCHEMA = "flat"
    backtest("--strategy-config", str(config), "--clickhouse", FROM, TO,
             "--output-dir", str(tmp_path / "ch"))  # fmt: skip
    assert (
        report_of(tmp_path / "ch")["spec"]["rows"] == report_of(tmp_path / "file")["spec"]["rows"]
    )
    assert net_pnl(tmp_path / "ch") == pytest.approx(net_pnl(tmp_path / "file"), abs=1e-6)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--signals", "/nonexistent/s.json"], "--signals /nonexistent/s.json: No such file"),
        ([], "give one signal source"),
        (["--replay", "yesterday", TO], "--replay: not an ISO time: 'yesterday'"),
        (["--replay", TO, FROM], "--replay: TO is before FROM"),
        (["--replay", FROM, TO], "--replay: no signal rows to evaluate"),
        (["--SIGNALS", "--strategy", "ghost"], "--strategy: no strategy named 'ghost'"),
        (["--SIGNALS", "--params", "buy_rsi_threshold"], "--params: expected NAME=VALUE"),
        (["--SIGNALS", "--params", "buy_rsi_threshold=x"], "--params: setting 0"),
        (["--SIGNALS", "--folds", "0"], "--folds must be at least 1"),
        (
            ["--SIGNALS", "--fold-plan", "cpcv", "--folds", "4", "--purge", "0"],
            "--fold-plan: purge must be at least 1",
        ),  # fmt: skip
        (["--SIGNALS", "--folds", "400"], "--fold-plan: "),
    ],
)
def test_bad_input_names_the_flag_and_records_nothing(inputs, tmp_path, extra, message):
    config, signals = inputs
    extra = [str(signals) if a == "--SIGNALS" else a for a in extra]
    if str(signals) in extra:
        extra.insert(extra.index(str(signals)), "--signals")
    out_dir = tmp_path / "never"
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        backtest("--strategy-config", str(config), *extra, "--output-dir", str(out_dir))
    assert ResearchTrial.objects.count() == 0
    assert not out_dir.exists()


def test_a_strategy_config_with_two_enabled_needs_a_name(tmp_path, inputs):
    _, signals = inputs
    config = tmp_path / "two.yaml"
    config.write_bytes(STRATEGY.replace(b"enabled: false", b"enabled: true"))
    with pytest.raises(CommandError, match="--strategy: 2 strategies are enabled"):
        backtest("--strategy-config", str(config), "--signals", str(signals),
                 "--output-dir", str(tmp_path / "x"))  # fmt: skip
    assert ResearchTrial.objects.count() == 0


def test_the_readme_example_on_the_shipped_sample(tmp_path):
    from autonomy.tests.conftest import SAMPLE_SIGNALS, SAMPLE_STRATEGY

    text = backtest("--strategy-config", str(SAMPLE_STRATEGY), "--signals", str(SAMPLE_SIGNALS),
                    "--output-dir", str(tmp_path / "bt"))  # fmt: skip
    lines = text.splitlines()
    assert lines[0].startswith("legacy-macd-rsi-v3 (legacy_macd_rsi@1.0.0)")
    assert lines[3].split()[:3] == ["total", "0.88", "2"]  # the lane's sample: net PnL 0.88
    assert ResearchTrial.objects.get().source == "backtest"
