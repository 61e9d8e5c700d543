"""`manage.py dspy demo` end to end on Postgres and the real Ceph RGW: the trade cycle replays the
bundled sample day, the bars label it, and compile → evaluate → promote run against the demo model
server that the command starts and stops. Its hashes are content hashes, so they are the same in
any database and on every run."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from django.core.management import call_command

from trading.models import LLMDspyWorkflowArtifact, Strategy, TradeDecision

pytestmark = pytest.mark.django_db

# the same on SQLite (`make run`'s database) and on Postgres, in any storage; the artifact hash
# (and the evaluation and promotion hashes over it) also covers the stored program's URI, so it
# is the same on every run against one storage
DATASET_HASH = "30501b9011e767efbce24b081255a8f1cf657115389bda640301448ff290b0b7"


@pytest.fixture
def rgw_bucket(settings) -> Iterator[tuple[Any, str]]:
    """A new bucket on the real RGW (TEST_S3_ENDPOINT) as the artifacts storage."""
    endpoint = os.environ.get("TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.fail("TEST_S3_ENDPOINT is not set: run the suite through `make test`")
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=os.environ.get("TEST_S3_ACCESS_KEY"),
        aws_secret_access_key=os.environ.get("TEST_S3_SECRET_KEY"),
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    bucket = f"torghut-test-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "endpoint_url": endpoint,
                "access_key": os.environ.get("TEST_S3_ACCESS_KEY", ""),
                "secret_key": os.environ.get("TEST_S3_SECRET_KEY", ""),
                "bucket_name": bucket,
                "region_name": "us-east-1",
                "addressing_style": "path",
                "signature_version": "s3v4",
                "file_overwrite": False,
            },
        },
    }
    yield client, bucket
    for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
        client.delete_object(Bucket=bucket, Key=item["Key"])
    client.delete_bucket(Bucket=bucket)


def _demo(capsys) -> dict[str, Any]:
    call_command("dspy", "demo")
    captured = capsys.readouterr()
    assert "the demo stand-in (trading/llm/demo_server.py)" in captured.err
    return dict(json.loads(captured.out))


def test_the_demo_runs_the_whole_loop_offline_with_stable_hashes(settings, rgw_bucket, capsys):
    client, bucket = rgw_bucket
    settings.LLM_DSPY_RUNTIME_MODE = "disabled"
    settings.LLM_DSPY_ARTIFACT_HASH = ""
    first = _demo(capsys)
    url = urlsplit(first.pop("model_url"))
    assert (url.hostname, url.path) == ("127.0.0.1", "/v1")
    assert first.pop("model_calls") == 34  # 21 bootstrap attempts, 13 held-out reviews
    assert first == {
        "model": "torghut-demo-rule-v1 (demo stand-in, trading/llm/demo_server.py)",
        "decisions": 235,
        "examples": {"examples": 79, "train": 66, "eval": 13, "veto": 17, "unlabelled": 5},
        "dataset_hash": DATASET_HASH,
        "optimizer": "bootstrap-fewshot",
        "artifact_hash": first["artifact_hash"],
        "compiled_prompt_hash": "4dda4e5e5431535e789ecc82a0188097bebf6d050abb92deb400e4b165a086e5",
        "reproducibility_hash": "9c467d4e6b85be648e6078e050e68cb4532764d460ccbda77e9e029a6434e7e3",
        "eval_hash": first["eval_hash"],
        "gate_compatibility": "pass",
        "gates": {
            "schemaValidRate": True,
            "vetoAlignmentRateDelta": True,
            "falseVetoRate": True,
            "latencyP95Ms": True,
        },
        "policy": "config/trading/llm/dspy-metrics.demo.yaml",
        # the demo model is a rule, not a reviewer: measured, not gated (the demo policy)
        "rates": {
            "vetoAlignmentRate": 10 / 13,
            "baselineVetoAlignmentRate": 11 / 13,
            "falseVetoRate": 3 / 11,
        },
        "window": {
            "since": "2026-03-03T14:48:00+00:00",
            "until": "2026-03-03T19:52:00+00:00",
            "trainingCutoff": "2026-03-02",
            "model": "torghut-demo-rule-v1",
            "examples": 13,
            "droppedAtOrBeforeCutoff": 0,
        },
        "promotion_hash": first["promotion_hash"],
        "promotion_target": "shadow",
        "promoted": True,
    }
    # the demo model stopped with the command
    with pytest.raises(OSError), socket.create_connection((url.hostname, url.port), timeout=1):
        pass
    keys = {i["Key"] for i in client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert f"dspy/datasets/{DATASET_HASH}/dspy-dataset.json" in keys
    assert f"dspy/artifacts/{first['artifact_hash']}/dspy-compile-result.json" in keys
    promotion = LLMDspyWorkflowArtifact.objects.get(lane="promote")
    assert (promotion.artifact_hash, promotion.eval_hash, promotion.promotion_hash) == (
        first["artifact_hash"],
        first["eval_hash"],
        first["promotion_hash"],
    )
    approver = promotion.approved_by
    assert approver is not None
    assert (approver.username, promotion.approval_token_ref) == ("dspy-demo-approver", "dspy-demo")
    assert not approver.has_usable_password()
    assert sorted(Strategy.objects.values_list("name", "account_labels")) == [
        ("dspy-demo-intraday-tsmom-demo", ["dspy-demo"]),
        ("dspy-demo-macd-rsi-demo", ["dspy-demo"]),
    ]
    assert set(TradeDecision.objects.values_list("account_label", flat=True)) == {"dspy-demo"}

    second = _demo(capsys)  # the cursor is at the end: no decision added, the same hashes
    second.pop("model_url"), second.pop("model_calls")
    assert second == first
    assert LLMDspyWorkflowArtifact.objects.filter(lane="promote").count() == 1
    # nothing was configured to run it
    assert (settings.LLM_DSPY_RUNTIME_MODE, settings.LLM_DSPY_ARTIFACT_HASH) == ("disabled", "")
