"""Sweeps in the ledger (`autonomy.services.sweeps`) on real Postgres and the real RGW: the
dataset stored once, chunks claimed and stored idempotently, the report written once with every
trial recorded, and `manage.py sweep` (local workers)."""

from __future__ import annotations

import hashlib
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from autonomy.engine.artifacts import artifact_bytes
from autonomy.models import ChunkStatus, ResearchTrial, Sweep, SweepChunk, SweepStatus
from autonomy.services.sweep_data import dataset_key, strategy_entry
from autonomy.services.sweeps import (
    sweep_chunk_run,
    sweep_chunk_store,
    sweep_finalize,
    sweep_prepare,
    sweep_register,
    sweep_run_local,
)
from autonomy.sweep import ChunkResult, FoldPlanSpec, chunk_evaluate, sweep_report
from autonomy.tests.engine.helpers import signal_rows
from autonomy.trials import TrialHistory
from torghut_site.storage import object_get

pytestmark = pytest.mark.django_db

STRATEGY = b"""strategies:
  - name: macd-sweep
    type: legacy_macd_rsi
    version: 1.0.0
    enabled: true
    base_timeframe: 1Min
    max_notional_per_trade: 2000
    universe_symbols: [AAPL, MSFT]
    params:
      buy_rsi_threshold: 45
      sell_rsi_threshold: 55
"""
GRID = [("buy_rsi_threshold", [35, 45]), ("sell_rsi_threshold", [55, 65])]


@pytest.fixture
def rows():
    return signal_rows({"AAPL": 1, "MSFT": 2, "TSLA": 3}, 120)


@pytest.fixture
def prepared(rows, s3_artifacts):
    return sweep_prepare(
        rows=rows,
        entry=strategy_entry(STRATEGY, None),
        params={},
        grid=GRID,
        plan=FoldPlanSpec("rolling", 3),
        signal_source="file",
    )


def pure_report(prepared):
    spec = prepared.spec
    results = [chunk_evaluate(spec, prepared.frame, c) for c in spec.chunks()]
    return artifact_bytes(sweep_report(spec, results, TrialHistory(spec.family)))


def test_register_stores_the_dataset_once_and_the_chunks(prepared, s3_artifacts):
    sweep = sweep_register(prepared=prepared)
    again = sweep_register(prepared=prepared)
    assert again.pk == sweep.pk and Sweep.objects.count() == 1
    assert (sweep.status, sweep.chunk_total, sweep.chunk_done) == (SweepStatus.PENDING, 12, 0)
    assert SweepChunk.objects.filter(sweep=sweep, status=ChunkStatus.PENDING).count() == 12
    sha = hashlib.sha256(prepared.data).hexdigest()
    assert (sweep.dataset_sha256, sweep.dataset_key) == (sha, dataset_key(sha))
    assert object_get(sweep.dataset_key) == prepared.data
    # the universe keeps AAPL and MSFT only
    assert prepared.spec.rows == len(prepared.frame) and set(prepared.frame.symbols) >= {"AAPL"}
    assert "TSLA" not in {prepared.frame.symbols[c] for c in set(prepared.frame.symbol.tolist())}


def test_local_run_writes_the_report_once_and_records_every_trial(prepared):
    sweep = sweep_run_local(sweep=sweep_register(prepared=prepared))
    assert (sweep.status, sweep.chunk_done) == (SweepStatus.DONE, 12)
    data = artifact_bytes(sweep.report)
    assert data == pure_report(prepared)
    assert sweep.report_sha256 == hashlib.sha256(data).hexdigest()
    trials = ResearchTrial.objects.order_by("trial_key")
    assert trials.count() == 4
    assert {(t.source, t.source_ref, t.family) for t in trials} == {
        ("sweep", sweep.sweep_id, "legacy_macd_rsi")
    }
    assert sweep.report is not None
    assert {t.trial_key for t in trials} == {s["trial_key"] for s in sweep.report["settings"]}
    assert set(SweepChunk.objects.values_list("attempts", flat=True)) == {1}
    # finalizing again writes nothing; running again computes nothing
    assert sweep_finalize(sweep_id=sweep.sweep_id) is False
    assert sweep_chunk_run(sweep_id=sweep.sweep_id, setting_index=0, fold_index=0) == (
        "not_running"
    )
    sweep_run_local(sweep=sweep)
    assert set(SweepChunk.objects.values_list("attempts", flat=True)) == {1}
    assert ResearchTrial.objects.count() == 4


def test_a_chunk_result_is_stored_once_and_a_different_one_is_a_conflict(prepared):
    sweep = sweep_register(prepared=prepared)
    Sweep.objects.filter(pk=sweep.pk).update(status=SweepStatus.RUNNING)
    result = chunk_evaluate(prepared.spec, prepared.frame, (1, 2))
    assert sweep_chunk_store(sweep=sweep, result=result) == "stored"
    assert sweep_chunk_store(sweep=sweep, result=result) == "duplicate"
    forged = ChunkResult.from_dict({**result.as_dict(), "net_pnl": result.net_pnl + 1})
    assert sweep_chunk_store(sweep=sweep, result=forged) == "conflict"
    chunk = SweepChunk.objects.get(sweep=sweep, setting_index=1, fold_index=2)
    assert chunk.result == json.loads(result.canonical_bytes())
    assert chunk.result_sha256 == result.sha256
    assert (chunk.conflict_count, chunk.conflict_sha256) == (1, forged.sha256)
    sweep.refresh_from_db()
    assert sweep.chunk_done == 1
    # a redelivered task of the stored chunk computes nothing
    assert sweep_chunk_run(sweep_id=sweep.sweep_id, setting_index=1, fold_index=2) == (
        "already_done"
    )
    assert chunk.attempts == SweepChunk.objects.get(pk=chunk.pk).attempts == 0
    # not finished: no report, no trial
    assert sweep_finalize(sweep_id=sweep.sweep_id) is False
    assert ResearchTrial.objects.count() == 0


def test_chunks_stored_in_any_order_give_the_single_process_report(prepared):
    sweep = sweep_register(prepared=prepared)
    Sweep.objects.filter(pk=sweep.pk).update(status=SweepStatus.RUNNING)
    for s, f in reversed(prepared.spec.chunks()):
        assert sweep_chunk_run(sweep_id=sweep.sweep_id, setting_index=s, fold_index=f) == "stored"
    sweep.refresh_from_db()
    assert sweep.status == SweepStatus.DONE  # the last store finalized it
    assert artifact_bytes(sweep.report) == pure_report(prepared)


def write_signals(tmp_path: Path, rows) -> Path:
    path = tmp_path / "signals.json"
    path.write_text(json.dumps(rows))
    return path


def test_sweep_command_local_prints_the_leaderboard(rows, tmp_path, s3_artifacts):
    config = tmp_path / "strategy.yaml"
    config.write_bytes(STRATEGY)
    out = StringIO()
    args = ["--strategy-config", str(config), "--signals", str(write_signals(tmp_path, rows))]
    args += ["--grid", "buy_rsi_threshold=35,45", "--grid", "sell_rsi_threshold=55,65"]
    args += ["--folds", "3", "--no-progress", "--output-dir", str(tmp_path / "out")]
    call_command("sweep", *args, stdout=out)
    sweep = Sweep.objects.get()
    text = out.getvalue()
    assert f"sweep {sweep.sweep_id} legacy_macd_rsi done 12/12 chunks" in text
    header = text.splitlines()[1].split()
    assert header == ["rank", "setting", "params", "net_pnl", "trades", "sharpe", "dsr", "psr",
                      "pbo", "trial_count"]  # fmt: skip
    assert len([line for line in text.splitlines() if "buy_rsi_threshold=" in line]) == 4
    report = tmp_path / "out" / "sweep" / "report.json"
    assert report.read_bytes() == artifact_bytes(sweep.report)
    assert ResearchTrial.objects.filter(source="sweep").count() == 4
    status = StringIO()
    call_command("sweep", "status", sweep.sweep_id[:12], stdout=status)
    assert status.getvalue().splitlines()[0] == text.splitlines()[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--grid", "buy_rsi_threshold"], "--grid: expected NAME=V1,V2"),
        (["--grid", "buy_rsi_threshold=30", "--grid", "buy_rsi_threshold=40"], "--grid: "),
        (["--grid", "buy_rsi_threshold=30", "--strategy", "nope"], "--strategy: no strategy"),
        (
            ["--grid", "buy_rsi_threshold=30", "--fold-plan", "cpcv", "--folds", "9999"],
            "--fold-plan: ",
        ),  # fmt: skip
        (["--grid", "buy_rsi_threshold=30", "--params", "x"], "--params: expected NAME=VALUE"),
        (["--grid", "buy_rsi_threshold=abc"], "--grid: setting 0"),
    ],
)
def test_sweep_command_bad_input_records_nothing(rows, tmp_path, extra, message):
    config = tmp_path / "strategy.yaml"
    config.write_bytes(STRATEGY)
    args = ["--strategy-config", str(config), "--signals", str(write_signals(tmp_path, rows))]
    with pytest.raises(CommandError, match=message):
        call_command("sweep", *args, *extra, "--no-progress")
    assert (Sweep.objects.count(), ResearchTrial.objects.count()) == (0, 0)


def test_sweep_status_of_an_unknown_sweep():
    with pytest.raises(CommandError, match="no sweep 'deadbeefdead'"):
        call_command("sweep", "status", "deadbeefdead")


def test_admin_shows_progress_leaderboard_chunks_and_trials(prepared, admin_client):
    pending = sweep_register(prepared=prepared)
    page = admin_client.get("/admin/autonomy/sweep/")
    assert page.status_code == 200
    assert '<progress value="0" max="12"></progress> 0/12' in page.content.decode()
    sweep = sweep_run_local(sweep=pending)
    listing = admin_client.get("/admin/autonomy/sweep/").content.decode()
    assert '<progress value="12" max="12"></progress> 12/12' in listing
    change = admin_client.get(f"/admin/autonomy/sweep/{sweep.pk}/change/").content.decode()
    assert change.count("<tr><td>") == 4  # the leaderboard's rows
    assert sweep.report is not None
    first = sweep.report["leaderboard"][0]
    params = f"buy_rsi_threshold={first['params']['buy_rsi_threshold']} " + (
        f"sell_rsi_threshold={first['params']['sell_rsi_threshold']}"
    )
    assert f"<tr><td>1</td><td>{first['setting']}</td><td>{params}</td>" in change
    assert change.count("sweepchunk/") >= 12  # every chunk inline, linked
    trials = admin_client.get("/admin/autonomy/researchtrial/?source__exact=sweep")
    assert trials.status_code == 200
    assert trials.content.decode().count(sweep.sweep_id) == 4
    assert admin_client.get("/admin/autonomy/researchtrial/add/").status_code == 403
    assert admin_client.get("/admin/autonomy/sweep/add/").status_code == 403
