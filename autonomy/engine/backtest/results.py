"""A backtest's result: the metrics and every row's arrays, its decisions and trades, and the
JSON-ready artifact with a downsampled equity curve."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from autonomy.engine.backtest.config import REJECT_REASONS, BacktestMetrics, Int8Array, IntpArray
from autonomy.engine.data import BarFrame, FloatArray, ns_to_datetime


@dataclass(frozen=True)
class Decision:
    ts_ns: int
    symbol: str
    seq: int
    side: str  # buy | sell
    status: str  # accepted | rejected
    qty: float  # the order qty (0 when rejected)
    reason: str = ""


@dataclass(frozen=True)
class Trade:
    ts_ns: int
    symbol: str
    side: str
    qty: float
    price: float
    reference_price: float
    fee: float
    decision_ts_ns: int


@dataclass(frozen=True)
class BacktestResult:
    metrics: BacktestMetrics
    actions: Int8Array
    orders: FloatArray  # signed order qty at each decision row (0: none or rejected)
    reject_reason: npt.NDArray[np.int8]  # index into REJECT_REASONS (0 = not rejected)
    held: FloatArray  # the row's symbol position after that row's fill
    equity: FloatArray  # portfolio equity after each row
    fill_rows: IntpArray  # rows where a fill happened, increasing
    fill_qty: FloatArray  # signed
    fill_price: FloatArray
    fill_reference: FloatArray
    fill_fee: FloatArray
    fill_decision_rows: IntpArray

    def decisions(self, frame: BarFrame) -> list[Decision]:
        out: list[Decision] = []
        for row in np.flatnonzero(self.actions).tolist():
            reason = REJECT_REASONS[int(self.reject_reason[row])]
            out.append(
                Decision(
                    ts_ns=int(frame.ts[row]),
                    symbol=frame.symbols[int(frame.symbol[row])],
                    seq=int(frame.seq[row]),
                    side="buy" if self.actions[row] > 0 else "sell",
                    status="rejected" if reason else "accepted",
                    qty=abs(float(self.orders[row])),
                    reason=reason,
                )
            )
        return out

    def trades(self, frame: BarFrame) -> list[Trade]:
        return [
            Trade(
                ts_ns=int(frame.ts[row]),
                symbol=frame.symbols[int(frame.symbol[row])],
                side="buy" if qty > 0 else "sell",
                qty=abs(qty),
                price=price,
                reference_price=ref,
                fee=fee,
                decision_ts_ns=int(frame.ts[decision]),
            )
            for row, qty, price, ref, fee, decision in zip(
                self.fill_rows.tolist(),
                self.fill_qty.tolist(),
                self.fill_price.tolist(),
                self.fill_reference.tolist(),
                self.fill_fee.tolist(),
                self.fill_decision_rows.tolist(),
                strict=True,
            )
        ]

    def artifact(
        self, frame: BarFrame, *, include_trades: bool = True, equity_points: int = 200
    ) -> dict[str, Any]:
        """JSON-ready summary: metrics, trades (optional) and a downsampled equity curve."""
        out: dict[str, Any] = {"metrics": self.metrics.as_dict()}
        if include_trades:
            out["trades"] = [
                {
                    "ts": ns_to_datetime(t.ts_ns).isoformat(),
                    "symbol": t.symbol,
                    "side": t.side,
                    "qty": t.qty,
                    "price": t.price,
                    "reference_price": t.reference_price,
                    "fee": t.fee,
                    "decision_ts": ns_to_datetime(t.decision_ts_ns).isoformat(),
                }
                for t in self.trades(frame)
            ]
        out["equity_curve"] = equity_curve(frame, self.equity, points=equity_points)
        return out


def equity_curve(frame: BarFrame, equity: FloatArray, *, points: int = 200) -> list[list[Any]]:
    """[[iso ts, equity], ...] at `points` evenly spaced rows (first and last included)."""
    n = equity.shape[0]
    if n == 0:
        return []
    rows = np.unique(np.linspace(0, n - 1, num=min(points, n)).round().astype(np.intp))
    return [[ns_to_datetime(int(frame.ts[r])).isoformat(), float(equity[r])] for r in rows]
