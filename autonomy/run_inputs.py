"""What a research run's id covers: every input that can change the bytes of its artifacts.

`RunInputs` is the typed, frozen record of those inputs and `run_id_for` the one function that
turns it into the run id (the first 24 hex digits of the sha256 of its canonical JSON). The same
record is stored in the run's manifest (`autonomy/runs/<run_id>/manifest.json`) and in the
ledger row (`ResearchRun.inputs`), so a run's evidence names what produced it.

Covered: the engine version (`autonomy.engine.ENGINE_VERSION`) and the code commit; the signals
(sha256 of the bytes given and of the rows parsed from them, which also covers the file format),
their source; the strategy config and gate policy (sha256 of their bytes); the promotion target;
the approval; the fold plan; the cost model, starting cash and default quantity (from settings);
the stress settings and drift thresholds (from settings); the strategy families' recorded trials
(`autonomy.trials`: the overfitting statistics read them), but for the run's own; the
allocator's caps when the allocator is enabled (a book of strategies is traded under them).

Not covered, because they do not change an artifact's bytes: where the artifacts are written
(`--output-dir`, the object-storage bucket), `--no-progress`, `--strategy-configmap` (accepted
for the seed's interface and not read) and the approval token itself.

The approval is recorded as `approval_valid`, whether a token matching the configured
`TRADING_AUTONOMY_APPROVAL_TOKEN` was given, not as a hash of the token: gate 5 reads nothing
else, so two invalid tokens give the same evidence and must give the same run; a rotated valid
token changes nothing the lane computes; and nothing derived from the secret is stored in an
artifact or the ledger (a hash of a short token could be guessed offline; a boolean tells nothing).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autonomy.drift import DriftThresholds
from autonomy.engine import ENGINE_VERSION
from autonomy.engine.artifacts import canonical, sha256_hex
from autonomy.engine.backtest import CostModel
from autonomy.engine.portfolio import AllocatorCaps
from autonomy.engine.stress import StressSettings

RUN_ID_LENGTH = 24


@dataclass(frozen=True)
class FoldPlan:
    """The walk-forward plan asked for. `single`: one fold over every row (`folds` is 1).
    `rolling`: `folds` test windows tiling the rows after a train window of rows // (folds + 1)
    each, no embargo; the lane falls back to `single` when the data is too short for that (the
    data is covered by the signals hash)."""

    folds: int
    kind: str

    @classmethod
    def for_folds(cls, folds: int) -> FoldPlan:
        return cls(folds=folds, kind="single" if folds <= 1 else "rolling")


@dataclass(frozen=True)
class RunInputs:
    engine_version: str
    code_commit: str
    signals_sha256: str
    signal_rows_sha256: str
    signal_source: str
    strategy_config_sha256: str
    gate_policy_sha256: str
    promotion_target: str
    approval_valid: bool
    fold_plan: FoldPlan
    costs: CostModel
    starting_cash: float
    default_qty: float
    stress: StressSettings
    drift: DriftThresholds
    trial_history_sha256: str = ""
    allocator: AllocatorCaps | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON record (canonical: what `run_id_for` hashes)."""
        return dict(canonical(self))


def run_id_for(inputs: RunInputs) -> str:
    return sha256_hex(inputs)[:RUN_ID_LENGTH]


def rows_sha256(rows: Sequence[Mapping[str, Any]]) -> str:
    """sha256 of the parsed signal rows (sorted keys; values the parser gave, as text if not
    JSON)."""
    text = json.dumps(list(rows), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_inputs(
    *,
    code_commit: str,
    signals_bytes: bytes,
    signal_rows: Sequence[Mapping[str, Any]],
    signal_source: str,
    strategy_config_bytes: bytes,
    gate_policy_bytes: bytes,
    promotion_target: str,
    approval_valid: bool,
    folds: int,
    costs: CostModel,
    starting_cash: float,
    default_qty: float,
    stress: StressSettings,
    drift: DriftThresholds,
    trial_history_sha256: str = "",
    allocator: AllocatorCaps | None = None,
) -> RunInputs:
    return RunInputs(
        engine_version=ENGINE_VERSION,
        code_commit=code_commit,
        signals_sha256=hashlib.sha256(signals_bytes).hexdigest(),
        signal_rows_sha256=rows_sha256(signal_rows),
        signal_source=signal_source,
        strategy_config_sha256=hashlib.sha256(strategy_config_bytes).hexdigest(),
        gate_policy_sha256=hashlib.sha256(gate_policy_bytes).hexdigest(),
        promotion_target=promotion_target,
        approval_valid=approval_valid,
        fold_plan=FoldPlan.for_folds(folds),
        costs=costs,
        starting_cash=starting_cash,
        default_qty=default_qty,
        stress=stress,
        drift=drift,
        trial_history_sha256=trial_history_sha256,
        allocator=allocator,
    )
