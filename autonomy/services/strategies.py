"""The strategy rows a research candidate changes: snapshot, restore, apply (with the paper
patch's limits) and disable, and the account lane a promotion goes to by default.

`autonomy.services.promotion` changes them under a recorded, permission-checked approval;
`autonomy.services.readiness` rehearses the same changes (and undoes them) before a candidate
may be recommended. `PromotionError` is the refusal both raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.utils import timezone

from autonomy.research_lane import PATCH_MAX_NOTIONAL, PATCH_MAX_POSITION_PCT
from trading.lanes import lane_configs
from trading.models import Strategy
from trading.models.strategies import StrategySource, UncertaintyAction

_SNAPSHOT_FIELDS = (
    "name",
    "description",
    "enabled",
    "strategy_type",
    "version",
    "base_timeframe",
    "universe_symbols",
    "account_labels",
    "params",
    "priority",
    "max_position_pct_equity",
    "max_notional_per_trade",
    "source",
    "catalog_hash",
    "uncertainty_action",
    "promotion_ref",
    "promotion_candidate_id",
)


class PromotionError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def strategy_snapshot(name: str) -> dict[str, Any] | None:
    """The strategy row's configuration as plain JSON (None: no such row)."""
    row = Strategy.objects.filter(name=name).first()
    if row is None:
        return None
    out: dict[str, Any] = {}
    for field in _SNAPSHOT_FIELDS:
        value = getattr(row, field)
        out[field] = str(value) if isinstance(value, Decimal) else value
    return out


def strategy_restore(name: str, snapshot: Mapping[str, Any] | None) -> None:
    """Put the strategy row back as the snapshot had it; no snapshot: disable the row."""
    if snapshot is None:
        Strategy.objects.filter(name=name).update(enabled=False, updated_at=timezone.now())
        return
    values = {k: v for k, v in snapshot.items() if k != "name"}
    values.setdefault("uncertainty_action", UncertaintyAction.PASS)  # snapshots older than it
    # snapshots older than the provenance columns: the restored row names no promotion
    values.setdefault("promotion_ref", None)
    values.setdefault("promotion_candidate_id", "")
    for field in ("max_position_pct_equity", "max_notional_per_trade"):
        if values.get(field) is not None:
            values[field] = Decimal(str(values[field]))
    Strategy.objects.update_or_create(name=name, defaults=values)


def strategy_apply(
    spec: Mapping[str, Any],
    *,
    account_labels: list[str],
    uncertainty_action: str = UncertaintyAction.PASS,
    promotion_ref: int | None = None,
    candidate_id: str = "",
) -> Strategy:
    """Enable the candidate's strategy for `account_labels` (added to the lanes it already had
    when it was already a promoted strategy) with the paper patch's limits and the promoted
    run's gate-7 uncertainty action (applied by the trade cycle's uncertainty gate).

    `promotion_ref` and `candidate_id`: the `Promotion` row that approved this change and its
    candidate, stored on the row as its provenance (every decision copies them); both or
    neither (None/"": the readiness dry runs, which are rolled back)."""
    if (promotion_ref is None) != (not candidate_id):
        raise PromotionError("provenance_incomplete", "a promotion ref needs its candidate id")
    name = str(spec["name"])
    existing = Strategy.objects.filter(name=name).first()
    lanes = list(account_labels)
    if existing is not None and existing.source == StrategySource.PROMOTION and existing.enabled:
        lanes = sorted(set(existing.account_labels or []) | set(account_labels))
    strategy, _ = Strategy.objects.update_or_create(
        name=name,
        defaults={
            "description": f"promoted research candidate version={spec.get('version', '')}",
            "enabled": True,
            "strategy_type": spec["strategy_type"],
            "version": spec.get("version") or "1.0.0",
            "base_timeframe": spec.get("base_timeframe") or "1Min",
            "universe_symbols": list(spec.get("universe_symbols") or []),
            "account_labels": lanes,
            "params": dict(spec.get("params") or {}),
            "priority": int(spec.get("priority", 100)),
            "max_notional_per_trade": Decimal(PATCH_MAX_NOTIONAL),
            "max_position_pct_equity": Decimal(str(PATCH_MAX_POSITION_PCT)),
            "source": StrategySource.PROMOTION,
            "catalog_hash": "",
            "uncertainty_action": uncertainty_action,
            "promotion_ref": promotion_ref,
            "promotion_candidate_id": candidate_id,
        },
    )
    return strategy


def strategy_disable(name: str) -> None:
    Strategy.objects.filter(name=name).update(enabled=False, updated_at=timezone.now())


def default_lane_label(mode: str) -> str:
    for lane in lane_configs():
        if lane.enabled and lane.mode == mode:
            return lane.label
    raise PromotionError("no_lane", f"no enabled {mode} account lane is configured")
