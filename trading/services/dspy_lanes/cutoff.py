"""Leak-free evaluation: a model is only measured on decisions made after its training cutoff.

Each model declares the last day of its training data in LLM_MODEL_TRAINING_CUTOFFS_JSON. A
decision on or before that day (UTC) may be in what the model was trained on, so it could know
the outcome: the evaluation drops it, and a promotion refuses an evaluation whose window starts
on or before the cutoff of the model that will run the program.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings

from trading.llm.config import ReviewConfig
from trading.services.dspy_lanes.common import DspyLaneError


def lane_model() -> str:
    """The model the lanes' LM calls (the configured provider's model)."""
    return ReviewConfig.current().model


def model_training_cutoff(model: str) -> date | None:
    cutoffs: dict[str, date] = settings.LLM_MODEL_TRAINING_CUTOFFS
    return cutoffs.get(model)


def cutoff_required(model: str) -> date:
    cutoff = model_training_cutoff(model)
    if cutoff is None:
        raise DspyLaneError(
            "training_cutoff_missing",
            f"model {model!r} declares no training cutoff (LLM_MODEL_TRAINING_CUTOFFS_JSON)",
        )
    return cutoff


def after_cutoff_from(cutoff: date) -> datetime:
    """The first instant after the cutoff day (UTC)."""
    return datetime.combine(cutoff + timedelta(days=1), time(0), tzinfo=UTC)


def examples_after_cutoff(
    examples: list[dict[str, Any]], *, model: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The examples decided after `model`'s training cutoff, and the evaluation window they span
    ({since, until, trainingCutoff, model, examples, droppedAtOrBeforeCutoff})."""
    cutoff = cutoff_required(model)
    start = after_cutoff_from(cutoff)
    kept = [e for e in examples if datetime.fromisoformat(e["eventTs"]) >= start]
    if not kept:
        raise DspyLaneError(
            "dataset_before_training_cutoff",
            f"none of the {len(examples)} examples was decided after {cutoff.isoformat()}, "
            f"the training cutoff of {model!r}",
        )
    times = sorted(datetime.fromisoformat(e["eventTs"]) for e in kept)
    window = {
        "since": times[0].isoformat(),
        "until": times[-1].isoformat(),
        "trainingCutoff": cutoff.isoformat(),
        "model": model,
        "examples": len(kept),
        "droppedAtOrBeforeCutoff": len(examples) - len(kept),
    }
    return kept, window


def window_after_cutoff(window: dict[str, Any] | None, *, model: str, eval_hash: str) -> None:
    """Refuse an evaluation whose window starts on or before `model`'s training cutoff."""
    cutoff = cutoff_required(model)
    since = (window or {}).get("since")
    if not since or datetime.fromisoformat(since) < after_cutoff_from(cutoff):
        raise DspyLaneError(
            "eval_window_before_training_cutoff",
            f"evaluation {eval_hash} starts at {since or 'an unstated time'}, not after "
            f"{cutoff.isoformat()}, the training cutoff of {model!r}",
        )
