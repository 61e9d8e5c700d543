"""compile: the program optimized on a dataset's training split (optimizers.py)."""

from __future__ import annotations

import json
import random
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from torghut_site.hashing import canonical_bytes_hash as sha256_hex
from trading.llm.dspy import artifacts
from trading.llm.dspy.agentrun import IMPLEMENTATION_SPEC_BY_LANE
from trading.llm.dspy.outputs import verdict_outputs
from trading.models import LLMDspyWorkflowArtifact
from trading.models.llm import DspyArtifactStatus, DspyLane
from trading.services.dspy_lanes.common import (
    DspyLaneError,
    dataset_load,
    lane_lm,
    recorded,
    review_input,
    store_json,
    upsert,
)
from trading.services.dspy_lanes.optimizers import OPTIMIZERS, optimize

if TYPE_CHECKING:
    from trading.llm.dspy.program import TradeReviewCommitteeV1


def labelled_fields(example: dict[str, Any]) -> dict[str, Any]:
    """The answer the label asks for, in the program's output fields (the demos' outputs)."""
    label = example["label"]
    verdict = label["verdict"]
    return verdict_outputs(
        verdict,
        confidence=0.8,
        rationale=f"labelled {verdict}: markout {label['markoutBps']} bps after the decision",
        veto_flag="adverse_markout",
        metadata={"label_source": "markout"},
    )


def dspy_compile(
    *,
    dataset_hash: str,
    optimizer: str = "bootstrap-fewshot",
    seed: int = 0,
    max_demos: int = 4,
    lm: Any | None = None,
    now: datetime | None = None,
) -> LLMDspyWorkflowArtifact:
    from trading.llm.dspy.program import TradeReviewCommitteeV1

    if optimizer not in OPTIMIZERS:
        raise DspyLaneError("optimizer_unknown", f"{optimizer!r} (use {', '.join(OPTIMIZERS)})")
    train = _train_examples(dataset_hash=dataset_hash, seed=seed)
    student = TradeReviewCommitteeV1()
    compiled = _program_compile(
        student, train, optimizer=optimizer, max_demos=max_demos, seed=seed, lm=lm
    )
    state = json.loads(json.dumps(compiled.dump_state()))
    prompt_hash = sha256_hex(state)
    state_key = f"dspy/programs/{prompt_hash}/program-state.json"
    state_uri, _ = store_json(state_key, state)
    signature_versions = {student.program_name: student.signature_version}
    metric_bundle = {
        "trainExamples": len(train),
        "demos": len(compiled.review.demos),
        "maxDemos": max_demos,
    }
    result = artifacts.compile_result(
        program_name=student.program_name,
        signature_versions=signature_versions,
        optimizer=optimizer,
        dataset_hash=dataset_hash,
        metric_bundle=metric_bundle,
        program_state=state,
        compiled_artifact_uri=state_uri,
        seed=seed,
        created_at=now or timezone.now(),
    )
    if (done := recorded(f"compile:{result['artifactHash']}")) is not None:
        return done
    key = f"dspy/artifacts/{result['artifactHash']}/{artifacts.COMPILE_FILE}"
    _, file_hash = store_json(key, result)
    return upsert(
        f"compile:{result['artifactHash']}",
        lane=DspyLane.COMPILE,
        status=DspyArtifactStatus.COMPILED,
        implementation_spec_ref=IMPLEMENTATION_SPEC_BY_LANE["compile"],
        program_name=student.program_name,
        signature_version=student.signature_version,
        optimizer=optimizer,
        artifact_uri=state_uri,
        object_key=key,
        artifact_hash=result["artifactHash"],
        dataset_hash=dataset_hash,
        compiled_prompt_hash=result["compiledPromptHash"],
        reproducibility_hash=result["reproducibilityHash"],
        file_hash=file_hash,
        metric_bundle=metric_bundle,
        metadata={"program_state_key": state_key, "seed": seed},
    )


def _train_examples(*, dataset_hash: str, seed: int) -> list[dict[str, Any]]:
    """The dataset's training split in its reproducible order for `seed`."""
    data = dataset_load(dataset_hash)
    train = sorted(
        (e for e in data["examples"] if e["split"] == "train"), key=lambda e: e["decisionHash"]
    )
    if not train:
        raise DspyLaneError("dataset_empty", f"dataset {dataset_hash} has no training examples")
    random.Random(seed).shuffle(train)  # noqa: S311 (reproducible order, not crypto)
    return train


def _program_compile(
    student: TradeReviewCommitteeV1,
    train: list[dict[str, Any]],
    *,
    optimizer: str,
    max_demos: int,
    seed: int,
    lm: Any | None,
) -> Any:
    """The student compiled by the optimizer over the training examples."""
    import dspy

    from trading.llm.dspy.program import INPUT_FIELDS, program_inputs

    trainset = [
        dspy.Example(
            **program_inputs(review_input(e, program=student, artifact_hash="")),
            **labelled_fields(e),
        ).with_inputs(*INPUT_FIELDS)
        for e in train
    ]
    the_lm = lane_lm(lm)
    with dspy.context(lm=the_lm):
        return optimize(
            student, trainset, optimizer=optimizer, max_demos=max_demos, seed=seed, lm=the_lm
        )
