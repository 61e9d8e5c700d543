"""A candidate's state as the guard reads it: from a JSON file, a mapping built from the models,
or a ``CandidateState``; every wrong type is a ``GuardInputError``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from autonomy.guard.policy import Policy
from autonomy.guard.vocabulary import GuardInputError


@dataclass(frozen=True)
class CandidateState:
    """What the guard reads about a candidate (JSON keys in brackets)."""

    candidate_id: str | None = None  # [candidateId]; None: not checked
    run_id: str | None = None  # [runId]; None: every transition is denied missing_run_id
    active_stage: str | None = None  # [activeStage]
    paused: bool = False  # [paused]
    failure_counts: Mapping[str, int] = field(  # [failureCounts]
        default_factory=lambda: MappingProxyType({})
    )

    @classmethod
    def from_mapping(cls, state: Mapping[str, object], policy: Policy) -> CandidateState:
        """Parse the state JSON; other keys are ignored, wrong types are ``GuardInputError``."""
        active_stage = _optional_text(state, "activeStage")
        if active_stage is not None:
            policy.stage(active_stage, what="activeStage in state")
        paused = state.get("paused", False)
        if not isinstance(paused, bool):
            raise GuardInputError(f"state.paused must be true or false, got {paused!r}")
        counts_raw = state.get("failureCounts", {})
        if counts_raw is None:
            counts_raw = {}
        if not isinstance(counts_raw, Mapping):
            raise GuardInputError("state.failureCounts must be an object of stage -> count")
        counts: dict[str, int] = {}
        for stage, count in counts_raw.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise GuardInputError(
                    f"state.failureCounts[{stage!r}] must be a non-negative integer, got {count!r}"
                )
            counts[str(stage)] = count
        return cls(
            candidate_id=_optional_text(state, "candidateId"),
            run_id=_optional_text(state, "runId"),
            active_stage=active_stage,
            paused=paused,
            failure_counts=MappingProxyType(counts),
        )


def load_state(path: Path | str) -> dict[str, Any]:
    """Read a candidate state JSON file (an object); ``GuardInputError`` if it is not one."""
    state_path = Path(path)
    try:
        text = state_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GuardInputError(f"cannot read state file {state_path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise GuardInputError(f"state file {state_path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise GuardInputError(f"state file {state_path} must hold a JSON object")
    return data


def _optional_text(state: Mapping[str, object], key: str) -> str | None:
    value = state.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise GuardInputError(f"state.{key} must be a string, got {value!r}")
    return value.strip() or None


def candidate_state_resolve(
    state: Mapping[str, object] | CandidateState, policy: Policy
) -> CandidateState:
    if isinstance(state, CandidateState):
        if state.active_stage is not None:
            policy.stage(state.active_stage, what="activeStage in state")
        return state
    return CandidateState.from_mapping(state, policy)
