"""What the DSPy lanes share: errors, storage of canonical files, rows, datasets, the LM."""

from __future__ import annotations

import json
from typing import Any

from torghut_site.hashing import sha256_hex
from torghut_site.storage import object_get, object_put
from trading.llm.config import ReviewConfig
from trading.llm.dspy import artifacts
from trading.llm.schema import DspyReviewInput, ReviewSchemaError
from trading.models import LLMDspyWorkflowArtifact
from trading.models.llm import DspyLane


class DspyLaneError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def store_json(key: str, payload: dict[str, Any]) -> tuple[str, str]:
    data = artifacts.file_bytes(payload)
    stored = object_put(key, data, content_type="application/json")
    return stored.uri, sha256_hex(data)


def load_json(key: str) -> dict[str, Any]:
    return dict(json.loads(object_get(key)))


def upsert(run_key: str, **fields: Any) -> LLMDspyWorkflowArtifact:
    row, _ = LLMDspyWorkflowArtifact.objects.update_or_create(run_key=run_key, defaults=fields)
    return row


def recorded(run_key: str) -> LLMDspyWorkflowArtifact | None:
    """A lane's row for `run_key` if that result was recorded before. Lane results are written
    once: a rerun that reaches the same hashes returns the first row and leaves its files as they
    are (their `createdAt` and measured latency stay those of the first run)."""
    return LLMDspyWorkflowArtifact.objects.filter(run_key=run_key).first()


def dataset_load(dataset_hash: str) -> dict[str, Any]:
    row = LLMDspyWorkflowArtifact.objects.filter(
        lane=DspyLane.DATASET_BUILD, dataset_hash=dataset_hash
    ).first()
    if row is None:
        raise DspyLaneError("dataset_unknown", f"no dataset {dataset_hash}")
    data = load_json(row.object_key)
    if artifacts.dataset_hash(labeling=data["labeling"], examples=data["examples"]) != dataset_hash:
        raise DspyLaneError("dataset_tampered", f"{row.object_key} does not hash to {dataset_hash}")
    return data


def review_input(example: dict[str, Any], *, program: Any, artifact_hash: str) -> DspyReviewInput:
    from trading.llm.dspy.program import INPUT_SCHEMA_VERSION

    return DspyReviewInput.model_validate(
        {
            "schemaVersion": INPUT_SCHEMA_VERSION,
            "requestJson": example["requestJson"],
            "programName": program.program_name,
            "signatureVersion": program.signature_version,
            "artifactHash": artifact_hash,
            "marketSession": example["requestJson"].get("market_session"),
        }
    )


def prediction_verdict(prediction: Any) -> str | None:
    from trading.llm.dspy.program import prediction_output

    try:
        return prediction_output(prediction).verdict
    except ReviewSchemaError:
        return None


def verdict_metric(example: Any, prediction: Any, trace: Any = None) -> bool:
    return bool(prediction_verdict(prediction) == example.verdict)


def lane_lm(lm: Any | None) -> Any:
    if lm is not None:
        return lm
    from trading.llm.dspy.lm import ProviderEngine, provider_lm

    config = ReviewConfig.current()
    return provider_lm(
        ProviderEngine(
            provider=config.provider,
            model=config.model,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            seed=config.seed,
            timeout_seconds=config.timeout_seconds,
        )
    )


def compile_row(artifact_hash: str) -> LLMDspyWorkflowArtifact:
    row = LLMDspyWorkflowArtifact.objects.filter(
        lane=DspyLane.COMPILE, artifact_hash=artifact_hash
    ).first()
    if row is None:
        raise DspyLaneError("artifact_unknown", f"no compiled artifact {artifact_hash}")
    return row
