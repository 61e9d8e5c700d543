"""A Jangar market-context stand-in: `GET /api/torghut/market-context?symbol=SYM` answers
`{"ok": true, "context": <bundle>}` in Jangar's bundle shape (domains technicals, fundamentals,
news, regime, each with state, asOf, freshness, quality, citations and risk flags).

`bundle()` builds a bundle; `answers[symbol]` sets what a symbol gets (a dict is sent as the
bundle, a `Response` as is, so tests can send hostile bodies); an unknown symbol gets
`{"ok": true, "context": null}`. `requests` records what arrived (headers, query).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.servers.base import Request, Response, TestHTTPServer

PATH = "/api/torghut/market-context"


def bundle(
    symbol: str,
    *,
    as_of: datetime,
    quality: float = 0.8,
    freshness: int = 30,
    risk_flags: tuple[str, ...] = (),
    news_payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    stamp = as_of.isoformat().replace("+00:00", "Z")

    def domain(name: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "domain": name,
            "state": "ok",
            "asOf": stamp,
            "freshnessSeconds": freshness,
            "maxFreshnessSeconds": 300,
            "sourceCount": 2,
            "qualityScore": quality,
            "payload": payload,
            "citations": [
                {"source": f"{name}-feed", "publishedAt": stamp, "url": f"https://x.test/{name}"}
            ],
            "riskFlags": [],
        }

    return {
        "contextVersion": "torghut.market-context.v1",
        "symbol": symbol,
        "asOfUtc": stamp,
        "freshnessSeconds": freshness,
        "qualityScore": quality,
        "sourceCount": 8,
        "riskFlags": list(risk_flags),
        "domains": {
            "technicals": domain("technicals", {"trend": "up", "rsi14": 41.5}),
            "fundamentals": domain("fundamentals", {"pe": 28.1}),
            "news": domain("news", news_payload or {"headline": "quiet tape"}),
            "regime": domain("regime", {"label": "risk_on"}),
        },
    }


class MarketContextServer(TestHTTPServer):
    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[str, dict[str, Any] | Response] = {}
        self.route("GET", PATH, self._context)

    @property
    def context_url(self) -> str:
        return self.url + PATH

    def _context(self, request: Request) -> Response:
        answer = self.answers.get(request.query.get("symbol", ""))
        if isinstance(answer, Response):
            return answer
        return Response(body={"ok": True, "context": answer})

    def reset(self) -> None:
        with self.lock:
            self.answers.clear()
            self.requests.clear()
            self.faults.clear()
