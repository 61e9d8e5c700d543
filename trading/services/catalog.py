"""Strategy catalog from YAML (TRADING_STRATEGY_CONFIG_PATH): `merge` upserts by name, `sync`
also disables catalog strategies absent from the file. Applied only when the file's sha256
changes; editable in the admin in between (the next file change wins for the strategies it lists).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from trading.models import Strategy
from trading.models.strategies import StrategySource, StrategyType

TYPE_ALIASES = {"intraday_tsmom_v1": "intraday_tsmom", "macd_rsi": "legacy_macd_rsi"}


class CatalogError(ValueError):
    pass


@dataclass(frozen=True)
class CatalogResult:
    applied: bool
    file_hash: str
    created: list[str]
    updated: list[str]
    disabled: list[str]


def _decimal(value: Any, field: str, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise CatalogError(f"strategy {name!r}: {field}={value!r} is not a number") from exc


def parse_catalog(text: str) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise CatalogError(f"not valid YAML: {exc}") from exc
    entries = data.get("strategies") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise CatalogError("the catalog needs a `strategies:` list")
    parsed = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("name"):
            raise CatalogError(f"strategies[{index}] needs a name")
        name = str(entry["name"])
        raw_type = str(
            entry.get("strategy_type") or entry.get("type") or entry.get("universe_type") or ""
        )
        strategy_type = TYPE_ALIASES.get(raw_type, raw_type)
        if strategy_type not in StrategyType.values:
            allowed = ", ".join(StrategyType.values)
            raise CatalogError(f"strategy {name!r}: type {raw_type!r} must be one of: {allowed}")
        description = str(entry.get("description") or "")
        version = str(entry.get("version") or "")
        if not version and "version=" in description:
            version = description.split("version=", 1)[1].split()[0].strip(",;")
        symbols = entry.get("universe_symbols") or entry.get("symbols") or []
        if not isinstance(symbols, list):
            raise CatalogError(f"strategy {name!r}: universe_symbols must be a list")
        params = entry.get("params") or {}
        if not isinstance(params, dict):
            raise CatalogError(f"strategy {name!r}: params must be a mapping")
        parsed.append(
            {
                "name": name,
                "description": description,
                "enabled": bool(entry.get("enabled", False)),
                "strategy_type": strategy_type,
                "version": version or "1.0.0",
                "base_timeframe": str(
                    entry.get("base_timeframe") or entry.get("timeframe") or "1Min"
                ),
                "universe_symbols": [str(s).upper() for s in symbols],
                "params": params,
                "priority": int(entry.get("priority", 100)),
                "max_notional_per_trade": _decimal(
                    entry.get("max_notional_per_trade"), "max_notional_per_trade", name
                ),
                "max_position_pct_equity": _decimal(
                    entry.get("max_position_pct_equity"), "max_position_pct_equity", name
                ),
            }
        )
    return parsed


def catalog_apply(*, path: Path, mode: str = "merge", force: bool = False) -> CatalogResult:
    raw = path.read_bytes()
    file_hash = hashlib.sha256(raw).hexdigest()
    if (
        not force
        and Strategy.objects.filter(source=StrategySource.CATALOG, catalog_hash=file_hash).exists()
    ):
        return CatalogResult(False, file_hash, [], [], [])
    entries = parse_catalog(raw.decode("utf-8"))
    created: list[str] = []
    updated: list[str] = []
    disabled: list[str] = []
    with transaction.atomic():
        for entry in entries:
            _, was_created = Strategy.objects.update_or_create(
                name=entry["name"],
                # a catalog row is no promotion's: its provenance is cleared
                defaults={
                    **entry,
                    "source": StrategySource.CATALOG,
                    "catalog_hash": file_hash,
                    "promotion_ref": None,
                    "promotion_candidate_id": "",
                },
            )
            (created if was_created else updated).append(entry["name"])
        if mode == "sync":
            names = [e["name"] for e in entries]
            stale = Strategy.objects.filter(source=StrategySource.CATALOG, enabled=True).exclude(
                name__in=names
            )
            disabled = list(stale.values_list("name", flat=True))
            stale.update(enabled=False)
    return CatalogResult(True, file_hash, created, updated, disabled)
