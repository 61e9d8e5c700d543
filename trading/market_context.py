"""Jangar market-context adapter: `GET <TRADING_MARKET_CONTEXT_URL>?symbol=<SYM>` and the
quality/staleness evaluation of the bundle (docs/compatibility.md#market-context).

The answer is untrusted data. The body is read under a byte cap (`MAX_BODY_BYTES`) and a deadline
of TRADING_MARKET_CONTEXT_TIMEOUT_SECONDS from the start (checked after each read; the connect and
each read wait at most that long, so a slow drip ends at the first read past the deadline);
redirects are never followed (a 3xx is an error); the JSON must be the envelope
`{"ok": true, "context": {...}}` with the bundle's fields of the right types. Anything else is a
`market_context_error` with its detail; nothing here raises. The bearer `JANGAR_API_KEY` is sent
when set.

Evaluation (first that applies): no answer or an answer with no bundle → `market_context_missing`;
a failed fetch or an invalid body → `market_context_error`; older than
TRADING_MARKET_CONTEXT_MAX_STALENESS_SECONDS (the larger of the bundle's `freshnessSeconds` and the
age of its `asOfUtc`) → `market_context_stale`; `qualityScore` below
TRADING_MARKET_CONTEXT_MIN_QUALITY → `market_context_low_quality`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import requests
from django.conf import settings

from torghut_site.flags import flag_enabled
from torghut_site.hashing import canonical_text

MAX_BODY_BYTES = 256 * 1024
DOMAINS = ("technicals", "fundamentals", "news", "regime")
DOMAIN_STATES = ("ok", "stale", "missing", "error")
MAX_FLAGS = 32
MAX_CITATIONS = 5
MAX_TEXT = 200
MAX_PAYLOAD_CHARS = 4000  # a domain payload larger than this reaches the model as truncated

MISSING = "market_context_missing"
STALE = "market_context_stale"
LOW_QUALITY = "market_context_low_quality"
ERROR = "market_context_error"
REASONS = (MISSING, STALE, LOW_QUALITY, ERROR)


class BundleError(ValueError):
    """The body is not a market-context envelope with a well-typed bundle."""


@dataclass(frozen=True)
class MarketContextPolicy:
    configured: bool
    required: bool
    fail_mode: str  # shadow_only | fail_closed

    @classmethod
    def current(cls) -> MarketContextPolicy:
        return cls(
            configured=bool(settings.TRADING_MARKET_CONTEXT_URL),
            required=flag_enabled("TRADING_MARKET_CONTEXT_REQUIRED"),
            fail_mode=settings.TRADING_MARKET_CONTEXT_FAIL_MODE,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "configured": self.configured,
            "required": self.required,
            "fail_mode": self.fail_mode,
            "min_quality": settings.TRADING_MARKET_CONTEXT_MIN_QUALITY,
            "max_staleness_seconds": settings.TRADING_MARKET_CONTEXT_MAX_STALENESS_SECONDS,
        }


@dataclass(frozen=True)
class MarketContext:
    """A fetched (or failed) context for one symbol; `reason` is "" when it is usable."""

    symbol: str
    fetched_at: datetime
    reason: str = ""
    detail: str = ""
    context_version: str = ""
    as_of: datetime | None = None
    staleness_seconds: float | None = None
    quality_score: float | None = None
    source_count: int = 0
    risk_flags: tuple[str, ...] = ()
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)
    latency_ms: int = 0

    @property
    def usable(self) -> bool:
        return not self.reason

    def for_model(self) -> dict[str, Any]:
        """What the reviewer sees under `market_context` (bounded, sanitised)."""
        return {
            "symbol": self.symbol,
            "context_version": self.context_version,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "staleness_seconds": self.staleness_seconds,
            "quality_score": self.quality_score,
            "source_count": self.source_count,
            "risk_flags": list(self.risk_flags),
            "domains": self.domains,
        }

    def as_json(self) -> dict[str, Any]:
        """What the review row stores (`LLMDecisionReview.market_context`)."""
        return {
            "status": "ok" if self.usable else self.reason,
            "detail": self.detail,
            "fetched_at": self.fetched_at.isoformat(),
            "latency_ms": self.latency_ms,
            "context": self.for_model() if self.context_version or self.domains else None,
        }


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise BundleError(f"expected a string, got {type(value).__name__}")
    return value[:limit]


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise BundleError(f"{name} is not a number")
    return float(value)


def _time(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(_text(value, 64).replace("Z", "+00:00"))
    except ValueError as exc:
        raise BundleError(f"{name} is not an ISO 8601 time") from exc
    if parsed.tzinfo is None:
        raise BundleError(f"{name} has no time zone")
    return parsed


def _flags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BundleError("riskFlags is not a list")
    return tuple(sorted({_text(flag, 64) for flag in value[:MAX_FLAGS]}))


def _citation(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise BundleError("a citation is not an object")
    url = item.get("url")
    return {
        "source": _text(item.get("source", "")),
        "published_at": _text(item.get("publishedAt") or ""),
        "url": None if url is None else _text(url, 500),
    }


def _domain(name: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {"state": "missing"}
    if not isinstance(raw, dict):
        raise BundleError(f"domains.{name} is not an object")
    state = raw.get("state")
    if state not in DOMAIN_STATES:
        raise BundleError(f"domains.{name}.state is not one of {', '.join(DOMAIN_STATES)}")
    citations = raw.get("citations") or []
    if not isinstance(citations, list):
        raise BundleError(f"domains.{name}.citations is not a list")
    payload = raw.get("payload") or {}
    if not isinstance(payload, dict):
        raise BundleError(f"domains.{name}.payload is not an object")
    freshness = raw.get("freshnessSeconds")
    quality = raw.get("qualityScore")
    as_of = _time(raw.get("asOf"), f"domains.{name}.asOf")
    return {
        "state": state,
        "as_of": as_of.isoformat() if as_of else None,
        "freshness_seconds": None if freshness is None else _number(freshness, "freshnessSeconds"),
        "quality_score": None if quality is None else _number(quality, "qualityScore"),
        "risk_flags": list(_flags(raw.get("riskFlags"))),
        "citations": [_citation(item) for item in citations[:MAX_CITATIONS]],
        "payload": payload
        if len(canonical_text(payload)) <= MAX_PAYLOAD_CHARS
        else {"truncated": True},
    }


def _bundle(body: bytes) -> dict[str, Any] | None:
    """The bundle inside the envelope, None when the answer says there is none."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BundleError(f"body is not JSON ({type(exc).__name__})") from exc
    if not isinstance(data, dict):
        raise BundleError("body is not a JSON object")
    if data.get("ok") is not True:
        raise BundleError(f"ok is not true: {str(data.get('message', ''))[:200]}")
    context = data.get("context")
    if context is None:
        return None
    if not isinstance(context, dict):
        raise BundleError("context is not an object")
    return context


def _read(symbol: str, *, timeout: float) -> bytes | None:
    """The body of a 2xx answer (None for 404); raises BundleError for everything else."""
    headers = {"Accept": "application/json"}
    if settings.JANGAR_API_KEY:
        headers["Authorization"] = f"Bearer {settings.JANGAR_API_KEY}"
    deadline = time.monotonic() + timeout
    try:
        with requests.get(
            settings.TRADING_MARKET_CONTEXT_URL,
            params={"symbol": symbol},
            headers=headers,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
        ) as response:
            if response.status_code == 404:
                return None
            if not 200 <= response.status_code < 300:
                raise BundleError(f"http_{response.status_code}")
            chunks, size = [], 0
            # read1 returns what has arrived (a slow drip cannot hold one read open for 16 KiB);
            # each read waits at most `timeout`, the deadline is checked between reads
            while chunk := response.raw.read1(16 * 1024, decode_content=True):
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise BundleError(f"body larger than {MAX_BODY_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise BundleError("timeout: body not read within the deadline")
                chunks.append(chunk)
    except requests.Timeout as exc:
        raise BundleError("timeout") from exc
    except requests.RequestException as exc:
        raise BundleError(f"request failed: {type(exc).__name__}") from exc
    return b"".join(chunks)


def _staleness(raw: dict[str, Any], *, as_of: datetime | None, now: datetime) -> float:
    """The larger of the bundle's own freshness and the age of its as-of time."""
    freshness = raw.get("freshnessSeconds")
    ages = [] if freshness is None else [_number(freshness, "freshnessSeconds")]
    if as_of is not None:
        ages.append((now - as_of).total_seconds())
    if not ages:
        raise BundleError("neither asOfUtc nor freshnessSeconds is given")
    return round(max(ages), 3)


def _domains(raw: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        raise BundleError("domains is not an object")
    return {name: _domain(name, raw.get(name)) for name in DOMAINS}


def market_context_evaluate(
    raw: dict[str, Any], *, symbol: str, now: datetime, latency_ms: int = 0
) -> MarketContext:
    """Type-check a bundle and rate it against the staleness and quality limits."""
    try:
        as_of = _time(raw.get("asOfUtc"), "asOfUtc")
        quality = _number(raw.get("qualityScore"), "qualityScore")
        context = MarketContext(
            symbol=symbol,
            fetched_at=now,
            context_version=_text(raw.get("contextVersion", ""), 64),
            as_of=as_of,
            staleness_seconds=_staleness(raw, as_of=as_of, now=now),
            quality_score=quality,
            source_count=int(_number(raw.get("sourceCount", 0), "sourceCount")),
            risk_flags=_flags(raw.get("riskFlags")),
            domains=_domains(raw.get("domains")),
            latency_ms=latency_ms,
        )
    except BundleError as exc:
        return MarketContext(symbol, now, ERROR, str(exc)[:500], latency_ms=latency_ms)
    limit = settings.TRADING_MARKET_CONTEXT_MAX_STALENESS_SECONDS
    if context.staleness_seconds is not None and context.staleness_seconds > limit:
        detail = f"{context.staleness_seconds}s old, limit {limit}s"
        return _with_reason(context, STALE, detail)
    if quality < settings.TRADING_MARKET_CONTEXT_MIN_QUALITY:
        detail = f"quality {quality} below {settings.TRADING_MARKET_CONTEXT_MIN_QUALITY}"
        return _with_reason(context, LOW_QUALITY, detail)
    return context


def _with_reason(context: MarketContext, reason: str, detail: str) -> MarketContext:
    return replace(context, reason=reason, detail=detail)


def market_context_fetch(*, symbol: str, now: datetime) -> MarketContext:
    """Fetch and evaluate the context for `symbol`; never raises. With no URL configured the
    context is missing."""
    if not settings.TRADING_MARKET_CONTEXT_URL:
        return MarketContext(symbol, now, MISSING, "TRADING_MARKET_CONTEXT_URL is not set")
    started = time.monotonic()
    try:
        body = _read(symbol, timeout=settings.TRADING_MARKET_CONTEXT_TIMEOUT_SECONDS)
        raw = None if body is None else _bundle(body)
    except BundleError as exc:
        latency = int((time.monotonic() - started) * 1000)
        return MarketContext(symbol, now, ERROR, str(exc)[:500], latency_ms=latency)
    latency = int((time.monotonic() - started) * 1000)
    if raw is None:
        return MarketContext(symbol, now, MISSING, "no context for the symbol", latency_ms=latency)
    return market_context_evaluate(raw, symbol=symbol, now=now, latency_ms=latency)
