"""Universe resolution (docs/compatibility.md#one-cycle): static symbols or Jangar's symbols API.

Jangar answers are cached for TRADING_UNIVERSE_CACHE_SECONDS in the shared cache; a cached
answer up to TRADING_UNIVERSE_MAX_STALE_SECONDS old is used when Jangar fails (status
`degraded`). With no usable answer the status is `unavailable` and, when
TRADING_UNIVERSE_REQUIRE_NON_EMPTY_JANGAR, the whole batch is blocked
(`universe_source_unavailable`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import requests
from django.conf import settings
from django.core.cache import cache

from torghut_site.flags import flag_enabled

logger = logging.getLogger(__name__)
CACHE_KEY = "trading:universe:jangar"


@dataclass(frozen=True)
class Universe:
    symbols: frozenset[str] | None  # None: unrestricted
    status: str  # ok | degraded | empty | unavailable | static
    source: str
    blocked_reason: str = ""


def _fetch_jangar() -> list[str]:
    headers = {"Accept": "application/json"}
    if settings.JANGAR_API_KEY:
        headers["Authorization"] = f"Bearer {settings.JANGAR_API_KEY}"
    response = requests.get(
        settings.JANGAR_SYMBOLS_URL,
        headers=headers,
        timeout=settings.TRADING_UNIVERSE_TIMEOUT_SECONDS,
    )
    response.raise_for_status()
    body = response.json()
    raw = body.get("symbols") if isinstance(body, dict) else body
    if not isinstance(raw, list):
        raise ValueError("symbols response is neither a list nor {symbols: [...]}")  # noqa: TRY004
    symbols = []
    for item in raw:
        symbol = item.get("symbol") if isinstance(item, dict) else item
        if isinstance(symbol, str) and symbol.strip():
            symbols.append(symbol.strip().upper())
    return symbols


def universe_resolve(*, now: float | None = None) -> Universe:
    if settings.TRADING_UNIVERSE_SOURCE == "static":
        symbols = settings.TRADING_STATIC_SYMBOLS
        return Universe(frozenset(symbols) if symbols else None, "static", "static")
    now = time.time() if now is None else now
    cached = cache.get(CACHE_KEY)
    if cached and now - cached["at"] < settings.TRADING_UNIVERSE_CACHE_SECONDS:
        return Universe(
            frozenset(cached["symbols"]), "ok" if cached["symbols"] else "empty", "jangar"
        )
    try:
        symbols = _fetch_jangar()
    except (requests.RequestException, ValueError) as exc:
        logger.warning("jangar universe fetch failed", extra={"error": str(exc)})
        if cached and now - cached["at"] <= settings.TRADING_UNIVERSE_MAX_STALE_SECONDS:
            return Universe(frozenset(cached["symbols"]), "degraded", "jangar")
        return _fail_safe("unavailable")
    cache.set(
        CACHE_KEY,
        {"symbols": symbols, "at": now},
        timeout=settings.TRADING_UNIVERSE_MAX_STALE_SECONDS + 60,
    )
    if not symbols:
        return _fail_safe("empty")
    return Universe(frozenset(symbols), "ok", "jangar")


def _fail_safe(status: str) -> Universe:
    if flag_enabled("TRADING_UNIVERSE_REQUIRE_NON_EMPTY_JANGAR"):
        return Universe(frozenset(), status, "jangar", blocked_reason="universe_source_unavailable")
    return Universe(None, status, "jangar")
