"""The guard's fixed vocabulary: the shipped policy's path, the id and stage-name patterns, the
modes, failure classes and supported controls, the next actions and failure actions, and the
two input errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

# the shipped policy, in autonomy/policies/ (this package is autonomy/guard/)
DEFAULT_POLICY_PATH = (
    Path(__file__).resolve().parent.parent / "policies" / "orchestration-policy.yaml"
)

#: Candidate and run ids (torghut research ledger format).
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{5,62}")
STAGE_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")

MODES = ("gitops", "emergency")
FAILURE_CLASSES = ("transient", "deterministic", "spec", "policy")

#: The control settings this engine implements; a policy asking for others is rejected.
SUPPORTED_CONTROLS: Mapping[str, str] = MappingProxyType(
    {
        "riskControlsAuthority": "final",
        "executionControlsAuthority": "final",
        "mutableActionMode": "gitops-first",
    }
)

NEXT_PROCEED = "proceed"
NEXT_HALT = "halt"
NEXT_HUMAN_REVIEW = "human_review"
NEXT_ROLLBACK = "rollback"

ACTION_RETRY = "retry"
ACTION_PAUSE = "pause_for_review"
ACTION_FAIL = "fail"


class GuardInputError(ValueError):
    """The question cannot be answered: bad policy, bad state or an unknown name."""


class PolicyError(GuardInputError):
    """The policy file is missing, unreadable or invalid."""
