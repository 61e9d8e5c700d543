"""Write-once research evidence: what the run id covers, replays, and refused overwrites, on the
real Ceph RGW bucket (`s3_artifacts`) and on a filesystem store (`fs_artifacts`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError
from django.utils import timezone

from autonomy.models import (
    ArtifactConflict,
    DriftCheck,
    Promotion,
    ResearchCandidate,
    ResearchRun,
)
from autonomy.policy import load_gate_policy
from autonomy.run_inputs import FoldPlan
from autonomy.services.artifacts import ArtifactConflictError, artifact_put, object_key
from autonomy.services.governance import drift_record
from autonomy.services.research_lane import lane_execute, policy_inputs
from torghut_site.storage import ObjectStoreError, object_get
from trading.signals.replay import read_signal_rows

from .conftest import SAMPLE_ARTIFACTS, SAMPLE_POLICY, SAMPLE_SIGNALS, SAMPLE_STRATEGY

pytestmark = pytest.mark.django_db

TOKEN = "evidence-approval-token-never-stored"  # noqa: S105


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bucket_hashes(s3: Any) -> dict[str, str]:
    """Every object in the bucket -> sha256 of its bytes."""
    out = {}
    for key in s3.keys():
        out[key] = sha(s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read())
    return out


def dir_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha(p.read_bytes()) for p in root.rglob("*") if p.is_file()}


def signals_file(tmp_path: Path, n: int = 24) -> Path:
    """`n` one-minute AAPL rows alternating oversold/overbought: trades in every fold."""
    rows = []
    for i in range(n):
        buy = i % 2 == 0
        rows.append(
            {
                "event_ts": f"2026-01-01T00:{i + 1:02d}:00+00:00",
                "symbol": "AAPL",
                "timeframe": "1Min",
                "payload": {
                    "macd": {"macd": "1.2" if buy else "-0.2", "signal": "0.5" if buy else "0.1"},
                    "rsi14": "20" if buy else "75",
                    "price": f"{100 + i * 0.5:.2f}",
                },
            }
        )
    path = tmp_path / "signals.json"
    path.write_text(json.dumps(rows))
    return path


def test_more_folds_on_the_same_inputs_is_a_new_run_and_leaves_the_first_intact(
    run_lane_cmd, tmp_path, s3_artifacts
):
    signals = signals_file(tmp_path)
    one = run_lane_cmd("--folds", "1", signals=signals, out=tmp_path / "one")
    before = bucket_hashes(s3_artifacts)
    one_files = dir_hashes(tmp_path / "one")
    two = run_lane_cmd("--folds", "2", signals=signals, out=tmp_path / "two")

    assert one["run_id"] != two["run_id"]
    assert one["candidate_id"] != two["candidate_id"]
    assert (one["recorded"], two["recorded"]) == (True, True)
    after = bucket_hashes(s3_artifacts)
    # every object of the first run is still there, byte for byte
    assert {k: after[k] for k in before} == before
    assert dir_hashes(tmp_path / "one") == one_files
    new = {k for k in after if k not in before}
    assert new and all(k.startswith(f"autonomy/runs/{two['run_id']}/") for k in new)
    folds = json.loads((tmp_path / "two" / "backtest/walkforward-results.json").read_text())
    assert [f["fold_name"] for f in folds["folds"]] == ["fold-1", "fold-2"]
    assert ResearchRun.objects.count() == 2
    # the fold plan is in the ledger row and the manifest of each run
    for summary, plan in (
        (one, {"folds": 1, "kind": "single"}),
        (two, {"folds": 2, "kind": "rolling"}),
    ):
        run = ResearchRun.objects.get(run_id=summary["run_id"])
        assert run.inputs["fold_plan"] == plan
        key = object_key(summary["run_id"], "manifest.json")
        manifest = json.loads(
            s3_artifacts.client.get_object(Bucket=s3_artifacts.bucket, Key=key)["Body"].read()
        )
        assert manifest["inputs"] == run.inputs
        assert (
            sha(s3_artifacts.client.get_object(Bucket=s3_artifacts.bucket, Key=key)["Body"].read())
            == run.manifest_sha256
        )


def test_more_folds_into_the_same_output_dir_is_refused_and_changes_nothing(
    run_lane_cmd, tmp_path, fs_artifacts
):
    signals = signals_file(tmp_path)
    out = tmp_path / "lane"
    one = run_lane_cmd(signals=signals, out=out)
    files, stored = dir_hashes(out), dir_hashes(fs_artifacts.root)
    with pytest.raises(CommandError, match=f"holds the artifacts of run {one['run_id']}"):
        run_lane_cmd("--folds", "2", signals=signals, out=out)
    assert (dir_hashes(out), dir_hashes(fs_artifacts.root)) == (files, stored)
    assert list(ResearchRun.objects.values_list("run_id", flat=True)) == [one["run_id"]]


def lane_inputs(signals: Path = SAMPLE_SIGNALS, **changes: Any) -> Any:
    policy, policy_bytes = load_gate_policy(SAMPLE_POLICY)
    values: dict[str, Any] = {
        "signal_rows": read_signal_rows(signals),
        "signals_bytes": signals.read_bytes(),
        "strategy_config_bytes": SAMPLE_STRATEGY.read_bytes(),
        "policy": policy,
        "policy_bytes": policy_bytes,
        "target": "paper",
        "approval_token_ok": False,
    }
    return policy_inputs(**{**values, **changes})


def test_same_inputs_replay_the_stored_run_byte_for_byte(tmp_path, s3_artifacts):
    first = lane_execute(inputs=lane_inputs(), output_dir=tmp_path / "a")
    stored = bucket_hashes(s3_artifacts)
    second = lane_execute(inputs=lane_inputs(), output_dir=tmp_path / "b")

    assert second.outcome.run_id == first.outcome.run_id
    assert (first.recorded, second.recorded) == (True, False)
    # replayed from the manifest, not computed: no candidate spec, no folds
    assert (second.outcome.candidate, second.outcome.folds) == (None, [])
    assert (second.outcome.status, second.outcome.recommendation) == (
        first.outcome.status,
        first.outcome.recommendation,
    )
    assert sorted(second.outcome.artifacts) == SAMPLE_ARTIFACTS
    assert bucket_hashes(s3_artifacts) == stored
    assert dir_hashes(tmp_path / "a") == dir_hashes(tmp_path / "b")
    assert sorted(dir_hashes(tmp_path / "b")) == sorted([*SAMPLE_ARTIFACTS, "manifest.json"])
    assert ResearchRun.objects.count() == 1
    assert ResearchCandidate.objects.count() == 1
    assert Promotion.objects.count() == 1
    assert DriftCheck.objects.count() == 1
    assert ArtifactConflict.objects.count() == 0


def changed_signals(tmp_path: Path) -> dict[str, Any]:
    rows = json.loads(SAMPLE_SIGNALS.read_text())
    rows[-1]["payload"]["price"] = "102.50"
    path = tmp_path / "signals.json"
    path.write_text(json.dumps(rows))
    return {"signal_rows": read_signal_rows(path), "signals_bytes": path.read_bytes()}


def changed_strategy(tmp_path: Path) -> dict[str, Any]:
    text = SAMPLE_STRATEGY.read_text().replace("buy_rsi_threshold: 35", "buy_rsi_threshold: 36")
    return {"strategy_config_bytes": text.encode()}


def changed_policy(tmp_path: Path) -> dict[str, Any]:
    doc = json.loads(SAMPLE_POLICY.read_text())
    doc["gate2_max_drawdown"] = 249
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(doc))
    policy, policy_bytes = load_gate_policy(path)
    return {"policy": policy, "policy_bytes": policy_bytes}


CHANGES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "approval": lambda tmp: {"approval_token_ok": True},
    "target_live": lambda tmp: {"target": "live"},
    "target_shadow": lambda tmp: {"target": "shadow"},
    "folds": lambda tmp: {"folds": 2},
    "signals": changed_signals,
    "strategy_config": changed_strategy,
    "gate_policy": changed_policy,
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_each_input_that_changes_the_result_is_a_new_run(change, tmp_path):
    base = lane_execute(inputs=lane_inputs(), output_dir=tmp_path / "base")
    before = dir_hashes(tmp_path / "base")
    other = lane_execute(
        inputs=lane_inputs(**CHANGES[change](tmp_path)), output_dir=tmp_path / "other"
    )
    assert other.outcome.run_id != base.outcome.run_id
    assert other.recorded is True
    assert ResearchRun.objects.count() == 2
    assert dir_hashes(tmp_path / "base") == before


def test_the_approval_is_recorded_as_valid_or_not_never_the_token(
    run_lane_cmd, tmp_path, settings, fs_artifacts
):
    settings.TRADING_AUTONOMY_APPROVAL_TOKEN = TOKEN
    none = run_lane_cmd("--promotion-target", "live", out=tmp_path / "none")
    wrong = run_lane_cmd(
        "--promotion-target", "live", "--approval-token", "guess", out=tmp_path / "none"
    )
    valid = run_lane_cmd(
        "--promotion-target", "live", "--approval-token", TOKEN, out=tmp_path / "valid"
    )
    # gate 5 reads only whether the token matched: a wrong token is the same run as none
    assert wrong["run_id"] == none["run_id"]
    assert wrong["recorded"] is False
    assert valid["run_id"] != none["run_id"]
    run = ResearchRun.objects.get(run_id=valid["run_id"])
    assert run.inputs["approval_valid"] is True
    assert ResearchRun.objects.get(run_id=none["run_id"]).inputs["approval_valid"] is False
    everything = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".py"]
    assert not any(TOKEN.encode() in data for data in everything)
    assert TOKEN not in json.dumps(list(ResearchRun.objects.values("inputs", "artifacts")))


def test_a_tampered_stored_object_is_refused_not_rewritten(
    run_lane_cmd, tmp_path, s3_artifacts, admin_client
):
    first = run_lane_cmd(out=tmp_path / "a")
    key = object_key(first["run_id"], "gates/gate-evaluation.json")
    tampered = b'{"allowed": true}\n'
    s3_artifacts.client.put_object(Bucket=s3_artifacts.bucket, Key=key, Body=tampered)
    stored = bucket_hashes(s3_artifacts)

    with pytest.raises(
        CommandError, match="stored_mismatch: .*gates/gate-evaluation.json.*refusing"
    ):
        run_lane_cmd(out=tmp_path / "b")
    assert bucket_hashes(s3_artifacts) == stored  # the tampered bytes are left for inspection
    assert not (tmp_path / "b").exists()
    conflict = ArtifactConflict.objects.get()
    run = ResearchRun.objects.get()
    assert (conflict.run_id, conflict.path, conflict.reason) == (
        first["run_id"],
        "gates/gate-evaluation.json",
        "stored_mismatch",
    )
    assert conflict.found_sha256 == sha(tampered)
    assert conflict.expected_sha256 == run.artifacts["gates/gate-evaluation.json"]["sha256"]
    assert run.status == "passed"
    page = admin_client.get("/admin/autonomy/artifactconflict/").content.decode()
    assert "gates/gate-evaluation.json" in page
    assert first["run_id"] in page


def test_a_tampered_manifest_is_refused(run_lane_cmd, tmp_path, fs_artifacts):
    first = run_lane_cmd(out=tmp_path / "a")
    manifest = fs_artifacts.root / object_key(first["run_id"], "manifest.json")
    doc = json.loads(manifest.read_text())
    doc["outcome"]["recommendation"]["eligible"] = False
    manifest.write_text(json.dumps(doc))
    with pytest.raises(CommandError, match="manifest_mismatch: .*not the one the ledger recorded"):
        run_lane_cmd(out=tmp_path / "b")
    assert json.loads(manifest.read_text()) == doc
    assert ArtifactConflict.objects.get().reason == "manifest_mismatch"


@pytest.mark.parametrize("store", ["s3_artifacts", "fs_artifacts"])
def test_different_bytes_for_a_written_path_raise_and_leave_it_unchanged(store, request, tmp_path):
    request.getfixturevalue(store)
    run_id = "f" * 24
    out = tmp_path / "out"
    artifact_put(run_id=run_id, path="gates/x.json", data=b"first\n", output_dir=out)
    # the same bytes again: nothing to do
    artifact_put(run_id=run_id, path="gates/x.json", data=b"first\n", output_dir=None)
    with pytest.raises(ArtifactConflictError, match="write_conflict: run f{24}, gates/x.json"):
        artifact_put(run_id=run_id, path="gates/x.json", data=b"other\n", output_dir=None)
    assert object_get(object_key(run_id, "gates/x.json")) == b"first\n"
    # an output-dir file planted out of band: refused before anything is stored
    planted = out / "gates/y.json"
    planted.write_bytes(b"planted\n")
    with pytest.raises(ArtifactConflictError, match="write_conflict: run f{24}, gates/y.json"):
        artifact_put(run_id=run_id, path="gates/y.json", data=b"y\n", output_dir=out)
    assert planted.read_bytes() == b"planted\n"
    with pytest.raises(ObjectStoreError, match="storage_object_missing"):
        object_get(object_key(run_id, "gates/y.json"))
    # same size, different bytes (the idempotent `object_put` would keep either as it is)
    with pytest.raises(ArtifactConflictError, match="write_conflict"):
        artifact_put(run_id=run_id, path="gates/x.json", data=b"fir5t\n", output_dir=out)
    assert (out / "gates/x.json").read_bytes() == b"first\n"
    assert object_get(object_key(run_id, "gates/x.json")) == b"first\n"
    rows = list(
        ArtifactConflict.objects.order_by("pk").values_list("path", "reason", "found_sha256")
    )
    assert rows == [
        ("gates/x.json", "write_conflict", sha(b"first\n")),
        ("gates/y.json", "write_conflict", sha(b"planted\n")),
        ("gates/x.json", "write_conflict", sha(b"first\n")),
    ]


def test_rgw_refuses_a_conditional_overwrite(s3_artifacts):
    """The race `object_put_once` leaves to the store: a PUT with If-None-Match: * on a key that
    exists is refused (412) by the Ceph RGW, so a concurrent writer cannot replace an object."""
    from botocore.exceptions import ClientError

    client, bucket = s3_artifacts.client, s3_artifacts.bucket
    client.put_object(Bucket=bucket, Key="k", Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=bucket, Key="k", Body=b"two", IfNoneMatch="*")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"


def test_drift_documents_are_written_once(tmp_path, fs_artifacts):
    result = lane_execute(inputs=lane_inputs(), output_dir=tmp_path / "a")
    run = result.run
    check = DriftCheck.objects.get(run=run)
    detection = fs_artifacts.root / object_key(run.run_id, "drift/detection.json")
    before = detection.read_bytes()
    # a ledger that lost its drift check (restored from an older backup) checks again later
    check.delete()
    later = drift_record(
        run=run,
        drift=result.outcome.artifacts["gates/promotion-evidence-gate.json"]["drift"],
        now=timezone.now() + timedelta(hours=1),
    )
    assert later.artifacts["drift/detection.json"] == "storage_error:storage_object_conflict"
    assert later.artifacts["drift/action.json"].startswith("file://")
    assert detection.read_bytes() == before
    assert ArtifactConflict.objects.get().path == "drift/detection.json"


def test_fold_plan_kinds():
    assert FoldPlan.for_folds(1) == FoldPlan(folds=1, kind="single")
    assert FoldPlan.for_folds(3) == FoldPlan(folds=3, kind="rolling")


def test_a_missing_stored_object_is_computed_again_and_restored_byte_for_byte(
    tmp_path, s3_artifacts
):
    first = lane_execute(inputs=lane_inputs(), output_dir=tmp_path / "a")
    stored = bucket_hashes(s3_artifacts)
    key = object_key(first.outcome.run_id, "backtest/evaluation-report.json")
    s3_artifacts.client.delete_object(Bucket=s3_artifacts.bucket, Key=key)

    second = lane_execute(inputs=lane_inputs(), output_dir=tmp_path / "b")
    assert second.recorded is False
    assert second.outcome.candidate is not None  # computed, not replayed
    assert bucket_hashes(s3_artifacts) == stored
    assert dir_hashes(tmp_path / "a") == dir_hashes(tmp_path / "b")
    assert (ResearchRun.objects.count(), ArtifactConflict.objects.count()) == (1, 0)


def test_a_recomputation_that_differs_from_the_ledger_is_refused(tmp_path, s3_artifacts):
    first = lane_execute(inputs=lane_inputs(), output_dir=tmp_path / "a")
    run_id = first.outcome.run_id
    path = "backtest/evaluation-report.json"
    s3_artifacts.client.delete_object(Bucket=s3_artifacts.bucket, Key=object_key(run_id, path))
    # the ledger holds another sha256 for the artifact than this code computes (code changed
    # without an ENGINE_VERSION bump, or the ledger was edited)
    run = ResearchRun.objects.get()
    run.artifacts[path]["sha256"] = "0" * 64
    run.save(update_fields=["artifacts"])
    stored = bucket_hashes(s3_artifacts)

    with pytest.raises(ArtifactConflictError, match=f"write_conflict: run {run_id}, {path}"):
        lane_execute(inputs=lane_inputs(), output_dir=tmp_path / "b")
    assert bucket_hashes(s3_artifacts) == stored
    conflict = ArtifactConflict.objects.get()
    assert (conflict.location, conflict.expected_sha256) == ("ledger", "0" * 64)
    assert ResearchRun.objects.get().status == "passed"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("SIMULATED_BROKER_SLIPPAGE_BPS", 7),
        ("SIMULATED_BROKER_STARTING_CASH", 50_000),
        ("TRADING_DEFAULT_QTY", 2),
        ("TRADING_DRIFT_MAX_PERFORMANCE_COST_BPS", 1),
    ],
)
def test_settings_the_lane_reads_are_part_of_the_run_id(setting, value, settings, tmp_path):
    base = lane_execute(inputs=lane_inputs(), output_dir=tmp_path / "base")
    setattr(settings, setting, value)
    other = lane_execute(inputs=lane_inputs(), output_dir=tmp_path / "other")
    assert other.outcome.run_id != base.outcome.run_id
    assert ResearchRun.objects.count() == 2
