"""The research lane's inputs (`autonomy.research_lane`): what a run reads, the candidate it
evaluates, and what its run id covers.

The candidate is a book of the strategy config's enabled strategies (issue #21, item 3): one
strategy as before, or several traded together under the allocator's caps
(`autonomy.engine.portfolio`). Each member is also a trial of its own strategy family
(`autonomy.trials`): evaluated alone on its own universe, exactly as a one-strategy lane would
evaluate it, so the same setting on the same data is the same trial whichever book it was in.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autonomy.drift import DriftThresholds
from autonomy.engine.artifacts import sha256_hex
from autonomy.engine.backtest import CostModel, Sizing
from autonomy.engine.portfolio import AllocatorCaps
from autonomy.engine.stress import StressSettings
from autonomy.policy import GatePolicy
from autonomy.run_inputs import RunInputs, rows_sha256, run_id_for, run_inputs
from autonomy.trials import TrialHistory, trial_key, window_key
from trading.services.catalog import CatalogError, parse_catalog
from trading.strategies.registry import get_strategy

# the ledger's column widths (autonomy.models.ResearchRun / ResearchCandidate)
BOOK_NAME_MAX = 100
BOOK_TYPE = "portfolio"


class LaneInputError(ValueError):
    """The lane's inputs cannot be evaluated (bad strategy config, unknown strategy type...)."""


@dataclass(frozen=True)
class LaneInputs:
    signal_rows: Sequence[Mapping[str, Any]]
    signals_bytes: bytes
    strategy_config_bytes: bytes
    gate_policy: GatePolicy
    gate_policy_bytes: bytes
    promotion_target: str = "paper"
    approval_token_ok: bool = False
    folds: int = 1
    costs: CostModel = field(default_factory=CostModel)
    starting_cash: float = 100_000.0
    default_qty: float = 1.0
    stress: StressSettings = field(default_factory=StressSettings)
    code_commit: str = ""
    signal_source: str = "file"
    drift: DriftThresholds = field(default_factory=DriftThresholds)
    # the trial registry's trials of each family the config names (autonomy.trials)
    trial_history: Mapping[str, TrialHistory] = field(default_factory=dict)
    # the allocator's caps when TRADING_ALLOCATOR_ENABLED (None: no allocator)
    allocator: AllocatorCaps | None = None

    @functools.cached_property
    def signal_rows_sha256(self) -> str:
        """`rows_sha256` of the signal rows, computed once: every member's trial names it."""
        return rows_sha256(self.signal_rows)


@dataclass(frozen=True)
class CandidateSpec:
    """One strategy of the candidate (a strategy-catalog entry)."""

    name: str
    strategy_type: str
    version: str
    base_timeframe: str
    params: Mapping[str, Any]
    universe_symbols: tuple[str, ...]
    priority: int
    max_notional_per_trade: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "strategy_type": self.strategy_type,
            "version": self.version,
            "base_timeframe": self.base_timeframe,
            "params": dict(self.params),
            "universe_symbols": list(self.universe_symbols),
            "priority": self.priority,
            "max_notional_per_trade": self.max_notional_per_trade,
        }


@dataclass(frozen=True)
class CandidateBook:
    """The candidate: the config's enabled strategies, in the config's order."""

    specs: tuple[CandidateSpec, ...]

    @property
    def single(self) -> bool:
        return len(self.specs) == 1

    @property
    def name(self) -> str:
        return "+".join(s.name for s in self.specs)

    @property
    def strategy_type(self) -> str:
        return self.specs[0].strategy_type if self.single else BOOK_TYPE

    @property
    def version(self) -> str:
        return self.specs[0].version if self.single else ""

    @property
    def label(self) -> str:
        return "+".join(f"{s.strategy_type}@{s.version}" for s in self.specs)

    @property
    def base_timeframe(self) -> str:
        return self.specs[0].base_timeframe

    @property
    def universe_symbols(self) -> tuple[str, ...]:
        """Every member's symbols; empty (every symbol) when a member trades every symbol."""
        if any(not s.universe_symbols for s in self.specs):
            return ()
        return tuple(sorted({sym for s in self.specs for sym in s.universe_symbols}))

    def as_dict(self) -> dict[str, Any]:
        if self.single:
            return self.specs[0].as_dict()
        return {
            "name": self.name,
            "strategy_type": BOOK_TYPE,
            "strategies": [s.as_dict() for s in self.specs],
        }


def lane_run_inputs(inputs: LaneInputs) -> RunInputs:
    """Everything in `inputs` that can change an artifact, as the run id's record. Of the trial
    history, the run id covers every recorded trial but the lane's own (`lane_trial_keys`): a
    run recorded once is the same run when its inputs come again."""
    own = set(lane_trial_keys(inputs))
    history = {
        family: h.without(own).sha256() for family, h in sorted(inputs.trial_history.items())
    }
    return run_inputs(
        code_commit=inputs.code_commit,
        signals_bytes=inputs.signals_bytes,
        signal_rows=inputs.signal_rows,
        signal_source=inputs.signal_source,
        strategy_config_bytes=inputs.strategy_config_bytes,
        gate_policy_bytes=inputs.gate_policy_bytes,
        promotion_target=inputs.promotion_target,
        approval_valid=inputs.approval_token_ok,
        folds=inputs.folds,
        costs=inputs.costs,
        starting_cash=inputs.starting_cash,
        default_qty=inputs.default_qty,
        stress=inputs.stress,
        drift=inputs.drift,
        trial_history_sha256=sha256_hex(history),
        allocator=inputs.allocator,
    )


def lane_run_id(inputs: LaneInputs) -> str:
    return run_id_for(lane_run_inputs(inputs))


def catalog_spec(entry: Mapping[str, Any]) -> CandidateSpec:
    """A parsed strategy-catalog entry as a `CandidateSpec` (its plugin must be registered)."""
    try:
        get_strategy(entry["strategy_type"])
    except KeyError as exc:
        raise LaneInputError(f"strategy config: {exc}") from exc
    budget = entry["max_notional_per_trade"]
    return CandidateSpec(
        name=entry["name"],
        strategy_type=entry["strategy_type"],
        version=entry["version"],
        base_timeframe=entry["base_timeframe"],
        params=dict(entry["params"]),
        universe_symbols=tuple(entry["universe_symbols"]),
        priority=entry["priority"],
        max_notional_per_trade=float(budget) if budget is not None else None,
    )


def book_from_config(raw: bytes) -> CandidateBook:
    """The candidate from a strategy config: its enabled strategies (at least one, one
    timeframe, names that fit the ledger)."""
    try:
        entries = parse_catalog(raw.decode("utf-8"))
    except (CatalogError, UnicodeDecodeError) as exc:
        raise LaneInputError(f"strategy config: {exc}") from exc
    specs = tuple(catalog_spec(e) for e in entries if e["enabled"])
    if not specs:
        raise LaneInputError("strategy config: no strategy is enabled")
    book = CandidateBook(specs)
    timeframes = sorted({s.base_timeframe for s in specs})
    if len(timeframes) > 1:
        raise LaneInputError(
            f"strategy config: the enabled strategies mix timeframes ({', '.join(timeframes)}); "
            "a book is evaluated on one"
        )
    if len(book.name) > BOOK_NAME_MAX:
        raise LaneInputError(
            f"strategy config: the enabled strategies' names joined ({len(book.name)} "
            f"characters) exceed {BOOK_NAME_MAX}"
        )
    return book


def lane_sizing(inputs: LaneInputs, spec: CandidateSpec) -> Sizing:
    """The strategy budget when the catalog sets one, else the default quantity (live sizing)."""
    if spec.max_notional_per_trade is not None:
        return Sizing(max_notional_per_trade=spec.max_notional_per_trade)
    return Sizing(qty=inputs.default_qty)


def trial_config(inputs: LaneInputs, sizing: Sizing) -> dict[str, Any]:
    return {"costs": inputs.costs, "sizing": sizing, "starting_cash": inputs.starting_cash}


def trial_dataset(inputs: LaneInputs, spec: CandidateSpec) -> str:
    """The data a lane trial is evaluated on: the parsed signal rows kept to the strategy's
    universe at its timeframe (with the fold plan, `trial_plan`, this places the rows)."""
    return sha256_hex(
        {
            "signal_rows": inputs.signal_rows_sha256,
            "source": inputs.signal_source,
            "timeframe": spec.base_timeframe,
            "universe": sorted(spec.universe_symbols),
        }
    )


def trial_plan(inputs: LaneInputs) -> str:
    return f"lane:{'single' if inputs.folds <= 1 else 'rolling'}:{inputs.folds}"


def lane_trial_keys(inputs: LaneInputs) -> list[str]:
    """The keys of the trials this lane's members will be (no parsing of signals); none when
    the strategy config is invalid (the run then stops with `LaneInputError`)."""
    try:
        book = book_from_config(inputs.strategy_config_bytes)
    except LaneInputError:
        return []
    return [
        trial_key(
            family=spec.strategy_type,
            params=spec.params,
            config_sha256=sha256_hex(trial_config(inputs, lane_sizing(inputs, spec))),
            window=window_key(trial_dataset(inputs, spec), trial_plan(inputs)),
        )
        for spec in book.specs
    ]
