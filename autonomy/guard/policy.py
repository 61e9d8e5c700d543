"""The orchestration policy: its stages, transitions and failure (retry/backoff/pause) rules, read
from YAML and validated (every problem is a ``PolicyError`` naming the file and the key)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

import yaml

from autonomy.guard.vocabulary import (
    DEFAULT_POLICY_PATH,
    FAILURE_CLASSES,
    STAGE_NAME_PATTERN,
    SUPPORTED_CONTROLS,
    GuardInputError,
    PolicyError,
)


@dataclass(frozen=True)
class StagePolicy:
    name: str
    lane: str
    mutable_action: bool
    require_previous_artifact: bool
    require_previous_gate_pass: bool


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    initial_backoff_seconds: int
    backoff_multiplier: Decimal
    max_backoff_seconds: int
    autopause_after_failures: int

    def backoff_seconds(self, failure_number: int) -> int:
        """Backoff before retrying after the ``failure_number``-th failure (1-based), capped."""
        cap = Decimal(self.max_backoff_seconds)
        backoff = Decimal(self.initial_backoff_seconds)
        for _ in range(failure_number - 1):  # iterative so the cap bounds the numbers
            if backoff >= cap:
                break
            backoff *= self.backoff_multiplier
        return math.ceil(min(backoff, cap))


@dataclass(frozen=True)
class Policy:
    version: str
    stages: Mapping[str, StagePolicy]  # in file order
    transitions: Mapping[str, tuple[str, ...]]  # every stage; () for a terminal stage
    failure_policies: Mapping[str, RetryPolicy]
    emergency_override_requires_ticket: bool

    def stage(self, name: str, *, what: str = "stage") -> StagePolicy:
        try:
            return self.stages[name]
        except KeyError:
            raise GuardInputError(
                f"unknown {what} {name!r}; policy {self.version} knows: {', '.join(self.stages)}"
            ) from None

    def edges(self) -> list[tuple[str, str]]:
        return [(src, dst) for src, targets in self.transitions.items() for dst in targets]


def load_policy(path: Path | str = DEFAULT_POLICY_PATH) -> Policy:
    policy_path = Path(path)
    try:
        text = policy_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {policy_path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {policy_path} is not valid YAML: {exc}") from exc
    return parse_policy(data, source=str(policy_path))


def parse_policy(data: object, *, source: str = "<policy>") -> Policy:
    """Validate an already-parsed policy document; errors name ``source`` and the key path."""
    top = _mapping(data, source, "policy")
    _keys(top, source, "policy", required=_TOP_KEYS, optional=("description",))
    version = _text(top["version"], source, "version")
    stages = _parse_stages(top["stages"], source)
    transitions = _parse_transitions(top["transitions"], stages, source)
    failure_policies = _parse_failure_policies(top["failurePolicies"], source)
    controls = _mapping(top["controls"], source, "controls")
    _keys(
        controls,
        source,
        "controls",
        required=(*SUPPORTED_CONTROLS, "emergencyOverrideRequiresTicket"),
    )
    for key, supported in SUPPORTED_CONTROLS.items():
        if controls[key] != supported:
            raise PolicyError(
                f"{source}: controls.{key} must be {supported!r} (the only setting the guard "
                f"implements), got {controls[key]!r}"
            )
    requires_ticket = _flag(
        controls["emergencyOverrideRequiresTicket"],
        source,
        "controls.emergencyOverrideRequiresTicket",
    )
    return Policy(
        version=version,
        stages=MappingProxyType(stages),
        transitions=MappingProxyType(transitions),
        failure_policies=MappingProxyType(failure_policies),
        emergency_override_requires_ticket=requires_ticket,
    )


_TOP_KEYS = ("version", "stages", "transitions", "failurePolicies", "controls")
_STAGE_KEYS = (
    "stage",
    "lane",
    "mutableAction",
    "requirePreviousArtifact",
    "requirePreviousGatePass",
)
_RETRY_KEYS = (
    "maxRetries",
    "initialBackoffSeconds",
    "backoffMultiplier",
    "maxBackoffSeconds",
    "autopauseAfterFailures",
)


def _parse_stages(raw: object, source: str) -> dict[str, StagePolicy]:
    if not isinstance(raw, list) or not raw:
        raise PolicyError(f"{source}: stages must be a non-empty list")
    stages: dict[str, StagePolicy] = {}
    for index, item in enumerate(raw):
        where = f"stages[{index}]"
        entry = _mapping(item, source, where)
        _keys(entry, source, where, required=_STAGE_KEYS)
        name = _text(entry["stage"], source, f"{where}.stage")
        if not STAGE_NAME_PATTERN.fullmatch(name):
            raise PolicyError(f"{source}: {where}.stage {name!r} must be lowercase kebab-case")
        if name in stages:
            raise PolicyError(f"{source}: {where}.stage {name!r} is defined twice")
        stages[name] = StagePolicy(
            name=name,
            lane=_text(entry["lane"], source, f"{where}.lane"),
            mutable_action=_flag(entry["mutableAction"], source, f"{where}.mutableAction"),
            require_previous_artifact=_flag(
                entry["requirePreviousArtifact"], source, f"{where}.requirePreviousArtifact"
            ),
            require_previous_gate_pass=_flag(
                entry["requirePreviousGatePass"], source, f"{where}.requirePreviousGatePass"
            ),
        )
    return stages


def _parse_transitions(
    raw: object, stages: Mapping[str, StagePolicy], source: str
) -> dict[str, tuple[str, ...]]:
    table = _mapping(raw, source, "transitions")
    for src in table:
        if src not in stages:
            raise PolicyError(f"{source}: transitions has unknown source stage {src!r}")
    transitions: dict[str, tuple[str, ...]] = {}
    for src in stages:
        if src not in table:
            raise PolicyError(
                f"{source}: transitions.{src} is missing (use [] for a terminal stage)"
            )
        targets = table[src]
        if targets is None:
            targets = []
        if not isinstance(targets, list):
            raise PolicyError(f"{source}: transitions.{src} must be a list of stages")
        for index, dst in enumerate(targets):
            if not isinstance(dst, str) or dst not in stages:
                raise PolicyError(f"{source}: transitions.{src}[{index}] is unknown stage {dst!r}")
        if len(set(targets)) != len(targets):
            raise PolicyError(f"{source}: transitions.{src} lists a stage twice")
        transitions[src] = tuple(targets)
    return transitions


def _parse_failure_policies(raw: object, source: str) -> dict[str, RetryPolicy]:
    table = _mapping(raw, source, "failurePolicies")
    _keys(table, source, "failurePolicies", required=FAILURE_CLASSES)
    policies: dict[str, RetryPolicy] = {}
    for failure_class in FAILURE_CLASSES:
        where = f"failurePolicies.{failure_class}"
        entry = _mapping(table[failure_class], source, where)
        _keys(entry, source, where, required=_RETRY_KEYS)
        initial = _count(entry["initialBackoffSeconds"], source, f"{where}.initialBackoffSeconds")
        cap = _count(entry["maxBackoffSeconds"], source, f"{where}.maxBackoffSeconds")
        if cap < initial:
            raise PolicyError(
                f"{source}: {where}.maxBackoffSeconds ({cap}) is below "
                f"initialBackoffSeconds ({initial})"
            )
        multiplier_raw = entry["backoffMultiplier"]
        if isinstance(multiplier_raw, bool) or not isinstance(multiplier_raw, int | float):
            raise PolicyError(f"{source}: {where}.backoffMultiplier must be a number")
        multiplier = Decimal(str(multiplier_raw))
        if not multiplier.is_finite() or multiplier < 1:
            raise PolicyError(
                f"{source}: {where}.backoffMultiplier must be >= 1, got {multiplier_raw!r}"
            )
        autopause = _count(
            entry["autopauseAfterFailures"], source, f"{where}.autopauseAfterFailures"
        )
        if autopause < 1:
            raise PolicyError(f"{source}: {where}.autopauseAfterFailures must be >= 1")
        policies[failure_class] = RetryPolicy(
            max_retries=_count(entry["maxRetries"], source, f"{where}.maxRetries"),
            initial_backoff_seconds=initial,
            backoff_multiplier=multiplier,
            max_backoff_seconds=cap,
            autopause_after_failures=autopause,
        )
    return policies


def _mapping(value: object, source: str, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise PolicyError(f"{source}: {where} must be a mapping")
    for key in value:
        if not isinstance(key, str):
            raise PolicyError(f"{source}: {where} has a non-string key {key!r}")
    return value


def _keys(
    value: Mapping[str, object],
    source: str,
    where: str,
    *,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> None:
    missing = [key for key in required if key not in value]
    if missing:
        raise PolicyError(f"{source}: {where} is missing {', '.join(missing)}")
    unknown = sorted(set(value) - set(required) - set(optional))
    if unknown:
        raise PolicyError(f"{source}: {where} has unknown key(s) {', '.join(unknown)}")


def _text(value: object, source: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{source}: {where} must be a non-empty string")
    return value.strip()


def _flag(value: object, source: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(f"{source}: {where} must be true or false, got {value!r}")
    return value


def _count(value: object, source: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(f"{source}: {where} must be an integer, got {value!r}")
    if value < 0:
        raise PolicyError(f"{source}: {where} must be >= 0, got {value}")
    return value
