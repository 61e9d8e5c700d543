"""Running the promoted DSPy program for one review (LLM_DSPY_RUNTIME_MODE shadow/active).

The program is rebuilt from the artifact promoted under LLM_DSPY_ARTIFACT_HASH: its stored state
is fetched from object storage and must hash to the compile result's `compiledPromptHash`, so a
changed file is refused rather than run. Loaded programs are cached per artifact hash (their
content cannot change). Every failure raises `DspyReviewError`; the caller falls back to the
legacy review and records why.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from torghut_site.hashing import canonical_bytes_hash as sha256_hex
from torghut_site.storage import ObjectStoreError, object_get
from trading.llm.config import ReviewConfig
from trading.llm.provider import LLMProviderError
from trading.llm.schema import DspyReviewInput, DspyReviewOutput, ReviewSchemaError
from trading.models.llm import DspyArtifactStatus, DspyLane, LLMDspyWorkflowArtifact


class DspyReviewError(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        # what the failed run had used (its calls are paid for even though it failed)
        self.tokens_prompt = 0
        self.tokens_completion = 0


@dataclass(frozen=True)
class DspyRunResult:
    review_input: dict[str, Any]
    output: DspyReviewOutput
    model: str
    tokens_prompt: int
    tokens_completion: int
    latency_ms: int
    # each LM call's messages and raw answer (through the provider adapter; none with a test LM)
    completions: tuple[dict[str, Any], ...] = ()


_cache: dict[str, Any] = {}
_cache_lock = threading.Lock()


def promoted_compile_artifact(artifact_hash: str) -> LLMDspyWorkflowArtifact | None:
    """The compile row of `artifact_hash` if a promotion of it is recorded, else None."""
    if not artifact_hash:
        return None
    promoted = LLMDspyWorkflowArtifact.objects.filter(
        lane=DspyLane.PROMOTE, status=DspyArtifactStatus.PROMOTED, artifact_hash=artifact_hash
    ).exists()
    if not promoted:
        return None
    return LLMDspyWorkflowArtifact.objects.filter(
        lane=DspyLane.COMPILE, artifact_hash=artifact_hash
    ).first()


def load_program_state(row: LLMDspyWorkflowArtifact) -> dict[str, Any]:
    key = str(row.metadata.get("program_state_key") or "")
    if not key:
        raise DspyReviewError("artifact_missing", f"compile row {row.run_key} has no program state")
    try:
        state = json.loads(object_get(key))
    except ObjectStoreError as exc:
        raise DspyReviewError("artifact_missing", str(exc)) from exc
    if sha256_hex(state) != row.compiled_prompt_hash:
        raise DspyReviewError("artifact_tampered", f"{key} does not hash to compiledPromptHash")
    return dict(state)


def promoted_program(config: ReviewConfig) -> Any:
    from trading.llm.dspy.program import program_for

    artifact_hash = config.dspy_artifact_hash
    with _cache_lock:
        cached = _cache.get(artifact_hash)
    if cached is not None:
        return cached
    row = promoted_compile_artifact(artifact_hash)
    if row is None:
        raise DspyReviewError(
            "artifact_not_promoted", f"{artifact_hash or '<unset>'} is not promoted"
        )
    if (row.program_name, row.signature_version) != (
        config.dspy_program_name,
        config.dspy_signature_version,
    ):
        raise DspyReviewError(
            "program_mismatch",
            f"artifact is {row.program_name}/{row.signature_version}, configured "
            f"{config.dspy_program_name}/{config.dspy_signature_version}",
        )
    try:
        program = program_for(row.program_name, row.signature_version)
    except LookupError as exc:
        raise DspyReviewError("program_unknown", str(exc)) from exc
    program.load_state(load_program_state(row))
    with _cache_lock:
        _cache[artifact_hash] = program
    return program


def _classify(exc: BaseException) -> DspyReviewError:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DspyReviewError):
            return seen
        if isinstance(seen, LLMProviderError):
            kind = "timeout" if seen.kind in ("timeout", "deadline") else "provider_error"
            return DspyReviewError(kind, str(seen))
        if isinstance(seen, ReviewSchemaError):
            return DspyReviewError("schema_error", seen.detail)
        seen = seen.__cause__ or seen.__context__
    return DspyReviewError("dspy_error", f"{type(exc).__name__}: {exc}"[:480])


def dspy_review(
    snapshot: dict[str, Any], *, config: ReviewConfig, lm: Any | None = None
) -> DspyRunResult:
    """Run the promoted program on a review snapshot, within LLM_DSPY_TIMEOUT_SECONDS."""
    import dspy

    from trading.llm.dspy.lm import ProviderEngine, provider_lm
    from trading.llm.dspy.program import INPUT_SCHEMA_VERSION, prediction_output, program_inputs

    started = time.monotonic()
    engine = ProviderEngine(
        provider=config.provider,
        model=config.model,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        seed=config.seed,
        timeout_seconds=config.dspy_timeout_seconds,
        deadline=started + config.dspy_timeout_seconds,
    )
    try:
        program = promoted_program(config)
        review_input = DspyReviewInput.model_validate(
            {
                "schemaVersion": INPUT_SCHEMA_VERSION,
                "requestJson": snapshot,
                "advisoryOnly": True,
                "programName": config.dspy_program_name,
                "signatureVersion": config.dspy_signature_version,
                "artifactHash": config.dspy_artifact_hash,
                "marketSession": snapshot.get("market_session"),
            }
        )
        with dspy.context(lm=lm if lm is not None else provider_lm(engine)):
            prediction = program(**program_inputs(review_input))
        output = prediction_output(prediction)
    except Exception as exc:  # noqa: BLE001 - any DSPy failure falls back to the legacy review
        raise _with_usage(_classify(exc), engine) from exc
    latency_ms = int((time.monotonic() - started) * 1000)
    if latency_ms > config.dspy_timeout_seconds * 1000:
        raise _with_usage(DspyReviewError("timeout", f"answered after {latency_ms} ms"), engine)
    return DspyRunResult(
        review_input=review_input.model_dump(mode="json", by_alias=True),
        output=output,
        model=engine.answered_by or ("dummy" if lm is not None else config.model),
        tokens_prompt=engine.tokens_prompt,
        tokens_completion=engine.tokens_completion,
        latency_ms=latency_ms,
        completions=tuple(engine.completions),
    )


def _with_usage(error: DspyReviewError, engine: Any) -> DspyReviewError:
    error.tokens_prompt, error.tokens_completion = engine.tokens_prompt, engine.tokens_completion
    return error
