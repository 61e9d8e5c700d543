"""Deterministic identities of decisions and orders."""

from __future__ import annotations

from datetime import datetime

from torghut_site.hashing import canonical_text_hash
from trading.brokers.base import CLIENT_ORDER_ID_MAX_LENGTH

CLIENT_ORDER_ID_PREFIX = "tg-"


def decision_hash(
    *,
    account_label: str,
    strategy_name: str,
    strategy_version: str,
    symbol: str,
    timeframe: str,
    event_ts: datetime,
    signal_seq: int,
    action: str,
) -> str:
    """sha256 over the signal's identity and the strategy — never over sizing or prices, so a
    re-processed signal (retried cycle, second worker, restart) always maps to the same decision."""
    return canonical_text_hash(
        {
            "account_label": account_label,
            "strategy": strategy_name,
            "strategy_version": strategy_version,
            "symbol": symbol,
            "timeframe": timeframe,
            "event_ts": event_ts.isoformat(),
            "seq": signal_seq,
            "action": action,
        }
    )


def client_order_id_for(decision_hash_hex: str) -> str:
    """`tg-` + 45 hex characters of the decision hash: 48 characters, Alpaca's documented limit.
    The hash already covers the account lane."""
    cid = (
        CLIENT_ORDER_ID_PREFIX
        + decision_hash_hex[: CLIENT_ORDER_ID_MAX_LENGTH - len(CLIENT_ORDER_ID_PREFIX)]
    )
    assert len(cid) == CLIENT_ORDER_ID_MAX_LENGTH
    return cid
