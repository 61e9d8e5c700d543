"""Live versus replay: one session's recorded signals through the backtester, compared decision by
decision with what the live trade cycle decided (issue 21, item 7). Pure: plain values in and
out; the database side is `autonomy.services.replay_check`.

Matching rule. A decision is keyed by (strategy, symbol, event_ts, signal seq, side): the live
`TradeDecision` answers the signal (event_ts, symbol, seq) with `action`; the replay decides on the
recorded signal row with the same key when the strategy's `evaluate_arrays` gives a non-zero action
there (`autonomy.engine.backtest`: one decision per non-zero action). Both decide for every intent,
accepted or rejected, so the keys compare intents. Per strategy only its `base_timeframe` rows are
replayed, with the parameters of the day (see `versions_in_force`).

Classes, decided in this order (each decision lands in exactly one):

- `matched`: both sides decided the key and agree on the outcome: both rejected for a reason the
  backtester models (`MODELLED_REJECT_REASONS`), or both accepted with the same quantity and a
  realised fill within `FILL_TOLERANCE_BPS` of the modelled one (or both still unfilled);
- `live_gate` (explained): both decided, live rejected it for a reason the backtester does not
  model (`LIVE_GATE_REASONS`: buying power, cooldowns, caps, the kill switch, LLM review...) or
  it still waits for its LLM review. The replay is then told of it: that row's order is not
  simulated, so the replayed position follows the live one;
- `data_gap` (explained): a live decision whose signal is not among the recorded signals (the
  recorder missed it, or a span of them); recorded spans with a hole longer than `GAP_BARS`
  bars are listed in the details (`signal_gaps`);
- `timing` (explained): a decision on one side only, paired with a decision of the same strategy,
  symbol and side on the other side one bar away (the symbol's previous or next recorded row);
  a matched decision whose live fill is the modelled fill of a later bar (an order that waited
  for a later cycle); or a sell live refused as `shorts_not_allowed` that the replay accepted
  while the strategy's own fills recorded before the decision covered it (the cycle's account
  position snapshot is up to TRADING_RECONCILE_MS old and had not seen the fill yet);
- `fill_model` (explained): both accepted, but the quantity differs or the realised fill is more
  than `FILL_TOLERANCE_BPS` from the modelled fill (or one side filled and the other did not);
- `rule_divergence` (UNEXPLAINED): a decision on one side only with the signal present (the rule
  itself disagrees), or both decided and disagree on the outcome (accepted on one side, rejected
  for a modelled reason on the other) with no earlier explained mismatch on that symbol. When an
  earlier mismatch on the symbol explains the position path (say a data gap dropped the buy a
  later sell closes), the outcome disagreement takes that earlier mismatch's class and names it
  in `detail`.

Slippage: for each matched-or-fill_model pair where both filled, realised bps =
side × (live fill − arrival) / arrival × 1e4 with arrival = the decision's price (as
`trading.tca`), modelled bps the same with the backtester's fill; the check stores both means.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from autonomy.engine.backtest import REJECT_REASONS, BacktestConfig, simulate, strategy_actions
from autonomy.engine.data import BarFrame, datetime_to_ns, ns_to_datetime
from trading.strategies.base import Strategy as StrategyPlugin

FILL_TOLERANCE_BPS = 0.5  # below one tick on any price above $200; float vs Decimal rounding
GAP_BARS = 3  # a recorded hole longer than this many bars is reported as a gap span
DETAILS_LIMIT = 200

MATCHED = "matched"
LIVE_GATE = "live_gate"
DATA_GAP = "data_gap"
TIMING = "timing"
FILL_MODEL = "fill_model"
RULE_DIVERGENCE = "rule_divergence"
MISMATCH_CLASSES = (DATA_GAP, TIMING, FILL_MODEL, RULE_DIVERGENCE, LIVE_GATE)
UNEXPLAINED = frozenset({RULE_DIVERGENCE})

# what the backtester rejects too (`autonomy.engine.backtest.REJECT_REASONS`)
MODELLED_REJECT_REASONS = frozenset({"shorts_not_allowed", "allocator_reject_zero_qty"})
# live rejections the backtester does not model (trading/gates.py, trading/netting.py, the LLM
# review and the submit path): explained. Any other non-modelled reason is treated alike.
LIVE_GATE_REASONS = frozenset(
    {
        # universe / sizing
        "symbol_not_in_universe",
        "symbol_not_allowed",
        "missing_price",
        # uncertainty action, participation cap, allocator
        "uncertainty_gate_abstain",
        "uncertainty_gate_fail",
        "uncertainty_degrade_zero_qty",
        "participation_volume_missing",
        "participation_cap_zero_qty",
        "allocator_reject_strategy_budget",
        "allocator_reject_symbol_budget",
        "allocator_reject_symbol_capacity",
        "allocator_reject_correlation_capacity",
        # portfolio caps
        "max_positions_exceeded",
        "volatility_missing",
        "max_notional_per_symbol_exceeded",
        "max_gross_exposure_exceeded",
        "max_net_exposure_exceeded",
        # risk engine
        "trading_disabled",
        "live_trading_disabled",
        "trade_updates_stream_unhealthy",
        "crypto_ws_disabled",
        "crypto_universe_disabled",
        "crypto_trading_disabled",
        "crypto_live_trading_disabled",
        "strategy_disabled",
        "max_notional_exceeded",
        "insufficient_buying_power",
        "max_position_pct_exceeded",
        "cooldown_active",
        # execution policy, netting, broker
        "kill_switch_active",
        "min_notional_not_met",
        "invalid_qty_increment",
        "precheck_opposite_side_open_order",
        "intent_netted_conflict",
        "broker_unavailable",
        "broker_rejected",
    }
)

Key = tuple[str, int, int, str]  # symbol, event_ts ns, seq, side
SignalKey = tuple[str, int, int]


@dataclass(frozen=True)
class LiveDecision:
    id: int
    symbol: str
    event_ts: datetime
    seq: int
    side: str
    status: str  # trading.models.decisions.DecisionStatus
    reject_reason: str
    qty: float
    arrival_price: float | None
    fill_price: float | None  # the executions' average fill (None: nothing filled)
    # for a sell refused as `shorts_not_allowed`: the strategy's position on the symbol from the
    # fills recorded before the decision was made (None: not computed)
    booked_qty: float | None = None

    @property
    def key(self) -> Key:
        return (self.symbol, datetime_to_ns(self.event_ts), self.seq, self.side)

    @property
    def live_gated(self) -> bool:
        """Held back by something the backtester does not model."""
        if self.status == "pending_review":
            return True
        return self.status == "rejected" and self.reject_reason not in MODELLED_REJECT_REASONS

    @property
    def accepted(self) -> bool:
        return self.status not in ("rejected", "pending_review")


@dataclass(frozen=True)
class ReplayDecision:
    symbol: str
    ts_ns: int
    seq: int
    side: str
    status: str  # accepted | rejected | suppressed (live gated: not simulated)
    reason: str
    qty: float
    arrival_price: float
    fill_price: float | None  # modelled (None: the order never filled)
    later_fills: tuple[float, ...] = ()  # modelled fills of the next few bars (timing check)

    @property
    def key(self) -> Key:
        return (self.symbol, self.ts_ns, self.seq, self.side)


@dataclass(frozen=True)
class Version:
    """Parameters (and the sizing budget) in force from `start_ns` on."""

    start_ns: int
    version: str
    params: Mapping[str, Any]
    budget: float | None


def versions_in_force(frame: BarFrame, versions: Sequence[Version]) -> np.ndarray:
    """For each frame row, the index into `versions` (sorted by start) in force at that row: the
    first version applies from the start of the day, each next one from its first decision."""
    if len(versions) <= 1:
        return np.zeros(len(frame), dtype=np.intp)
    starts = np.asarray([v.start_ns for v in versions[1:]], dtype=np.int64)
    return np.searchsorted(starts, frame.ts, side="right").astype(np.intp)


def replay_actions(
    frame: BarFrame, plugin: StrategyPlugin, versions: Sequence[Version]
) -> tuple[np.ndarray, np.ndarray]:
    """(actions, version index per row): each row decided by the version in force at its time."""
    index = versions_in_force(frame, versions)
    actions = np.zeros(len(frame), dtype=np.int8)
    for i, version in enumerate(versions):
        rows = index == i
        if rows.any():
            actions[rows] = strategy_actions(frame, plugin, version.params)[rows]
    return actions, index


def replay_decisions(
    frame: BarFrame,
    actions: np.ndarray,
    config: BacktestConfig,
    *,
    suppress: Iterable[Key] = (),
    later_bars: int = 3,
) -> list[ReplayDecision]:
    """The backtester's decisions for `actions`, where the rows of `suppress` (live-gated keys)
    decide but place no order, so the replayed positions follow the live ones."""
    suppressed = set(suppress)
    simulated = np.array(actions, dtype=np.int8, copy=True)
    decided = np.flatnonzero(actions).tolist()
    keys = {row: _row_key(frame, row, int(actions[row])) for row in decided}
    for row, key in keys.items():
        if key in suppressed:
            simulated[row] = 0
    result = simulate(frame, simulated, config)
    fill_of = dict(zip(result.fill_decision_rows.tolist(), result.fill_price.tolist(), strict=True))
    next_rows = _next_rows(frame)
    adverse = config.costs.adverse_bps / 1e4
    out = []
    for row in decided:
        key = keys[row]
        later = []
        nxt = next_rows[row]
        for _ in range(later_bars + 1):
            if nxt < 0:
                break
            later.append(_tick_round(float(frame.price[nxt]), key[3], adverse))
            nxt = next_rows[nxt]
        if key in suppressed:
            status, reason, qty = "suppressed", "live_gate", 0.0
        else:
            reason = _reject_reason(result, row)
            status = "rejected" if reason else "accepted"
            qty = abs(float(result.orders[row]))
        out.append(
            ReplayDecision(
                symbol=key[0],
                ts_ns=key[1],
                seq=key[2],
                side=key[3],
                status=status,
                reason=reason,
                qty=qty,
                arrival_price=float(frame.price[row]),
                fill_price=fill_of.get(row),
                later_fills=tuple(later[1:]),
            )
        )
    return out


def _reject_reason(result: Any, row: int) -> str:
    return REJECT_REASONS[int(result.reject_reason[row])]


def _tick_round(price: float, side: str, adverse: float) -> float:
    """The modelled market fill at `price` (as `autonomy.engine.backtest` prices a fill)."""
    tick = 0.0001 if price < 1.0 else 0.01
    moved = price * (1 + (adverse if side == "buy" else -adverse)) / tick
    steps = math.ceil(moved - 1e-9) if side == "buy" else math.floor(moved + 1e-9)
    return round(steps * tick, 4)


def _row_key(frame: BarFrame, row: int, action: int) -> Key:
    return (
        frame.symbols[int(frame.symbol[row])],
        int(frame.ts[row]),
        int(frame.seq[row]),
        "buy" if action > 0 else "sell",
    )


def _next_rows(frame: BarFrame) -> np.ndarray:
    """For each row, the next row of the same symbol (-1 at the symbol's last row)."""
    out = np.full(len(frame), -1, dtype=np.intp)
    for _, rows in frame.symbol_rows():
        out[rows[:-1]] = rows[1:]
    return out


def signal_gaps(frame: BarFrame, *, bar_ns: int) -> list[dict[str, Any]]:
    """Per symbol, the recorded holes longer than GAP_BARS bars: [{symbol, after, before}]."""
    gaps: list[dict[str, Any]] = []
    for code, rows in frame.symbol_rows():
        ts = frame.ts[rows]
        gaps.extend(
            {
                "symbol": frame.symbols[code],
                "after": ns_to_datetime(int(ts[i])).isoformat(),
                "before": ns_to_datetime(int(ts[i + 1])).isoformat(),
            }
            for i in np.flatnonzero(np.diff(ts) > GAP_BARS * bar_ns).tolist()
        )
    return gaps


@dataclass
class Comparison:
    live_decisions: int = 0
    replay_decisions: int = 0
    matched: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MISMATCH_CLASSES, 0))
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    realised_bps: list[float] = field(default_factory=list)
    modelled_bps: list[float] = field(default_factory=list)

    @property
    def unexplained(self) -> int:
        return sum(self.counts[c] for c in UNEXPLAINED)

    def add(self, cls: str, **info: Any) -> None:
        """One mismatch: `info` holds symbol, ts_ns, seq, side, then what explains it."""
        self.counts[cls] += 1
        ts_ns = int(info.pop("ts_ns"))
        self.mismatches.append(
            {
                "class": cls,
                "symbol": info.pop("symbol"),
                "event_ts": ns_to_datetime(ts_ns).isoformat(),
                "seq": info.pop("seq"),
                "side": info.pop("side"),
                **info,
            }
        )


def _bps(side: str, fill: float, arrival: float) -> float:
    return (1.0 if side == "buy" else -1.0) * (fill - arrival) / arrival * 1e4


def _live_info(d: LiveDecision) -> dict[str, Any]:
    return {"live_decision_id": d.id, "live_status": d.status, "live_reason": d.reject_reason}


def _replay_info(r: ReplayDecision) -> dict[str, Any]:
    return {"replay_status": r.status, "replay_reason": r.reason}


def _signal_positions(frame: BarFrame) -> dict[SignalKey, int]:
    """(symbol, ts, seq) -> the row's position among its symbol's recorded rows."""
    out: dict[SignalKey, int] = {}
    for code, rows in frame.symbol_rows():
        name = frame.symbols[code]
        for pos, row in enumerate(rows.tolist()):
            out[(name, int(frame.ts[row]), int(frame.seq[row]))] = pos
    return out


def _timing_pairs(
    live_only: Sequence[LiveDecision],
    replay_only: Sequence[ReplayDecision],
    positions: Mapping[SignalKey, int],
) -> list[tuple[LiveDecision, ReplayDecision]]:
    """Live-only and replay-only decisions of one symbol and side one recorded bar apart."""
    free: dict[tuple[str, str, int], list[ReplayDecision]] = defaultdict(list)
    for r in replay_only:
        free[(r.symbol, r.side, positions[(r.symbol, r.ts_ns, r.seq)])].append(r)
    pairs = []
    for d in live_only:
        pos = positions.get(d.key[:3])
        if pos is None:
            continue
        for near in (pos - 1, pos + 1):
            bucket = free.get((d.symbol, d.side, near))
            if bucket:
                pairs.append((d, bucket.pop()))
                break
    return pairs


def compare(
    live: Sequence[LiveDecision], replay: Sequence[ReplayDecision], *, frame: BarFrame
) -> Comparison:
    """Classify every live and replayed decision of one strategy's session (module doc)."""
    out = Comparison(live_decisions=len(live), replay_decisions=len(replay))
    positions = _signal_positions(frame)
    replay_by = {r.key: r for r in replay}
    live_keys = {d.key for d in live}
    live_only = [d for d in live if d.key not in replay_by]
    replay_only = [r for r in replay if r.key not in live_keys]
    pairs = _timing_pairs([d for d in live_only if d.key[:3] in positions], replay_only, positions)
    timed_live = {d.key for d, _ in pairs}
    timed_replay = {r.key for _, r in pairs}
    # (ts, symbol, seq, tie, kind, payload) processed in stream order
    events: list[tuple[int, str, int, int, str, Any]] = []
    for d in live:
        if d.key in replay_by:
            events.append((*_when(d.key), 0, "pair", (d, replay_by[d.key])))
        elif d.key not in timed_live:
            events.append((*_when(d.key), 1, "live", d))
    events.extend((*_when(r.key), 2, "replay", r) for r in replay_only if r.key not in timed_replay)
    for d, r in pairs:
        events.append((*min(_when(d.key), _when(r.key)), 3, "timing", (d, r)))
    events.sort(key=lambda e: (e[0], e[1], e[2], e[3]))
    first_mismatch: dict[str, str] = {}
    for _, symbol, _, _, kind, payload in events:
        cls = _classify_event(out, kind, payload, positions, first_mismatch)
        if cls is not None:
            first_mismatch.setdefault(symbol, cls)
    return out


def _when(key: Key) -> tuple[int, str, int]:
    """A key's place in stream order: (event_ts, symbol, seq)."""
    return (key[1], key[0], key[2])


def _classify_event(
    out: Comparison,
    kind: str,
    payload: Any,
    positions: Mapping[SignalKey, int],
    first_mismatch: Mapping[str, str],
) -> str | None:
    """Record one event's class; returns it (None when matched)."""
    if kind == "live":
        d: LiveDecision = payload
        cls = RULE_DIVERGENCE if d.key[:3] in positions else DATA_GAP
        detail = "live only, signal recorded" if cls == RULE_DIVERGENCE else "signal not recorded"
        out.add(cls, **_at(d.key), **_live_info(d), detail=detail)
        return cls
    if kind == "replay":
        r: ReplayDecision = payload
        out.add(RULE_DIVERGENCE, **_at(r.key), **_replay_info(r), detail="replay only")
        return RULE_DIVERGENCE
    if kind == "timing":
        d, r = payload
        out.add(
            TIMING,
            **_at(d.key),
            **_live_info(d),
            **_replay_info(r),
            replay_event_ts=ns_to_datetime(r.ts_ns).isoformat(),
            detail="decided one bar apart",
        )
        return TIMING
    d, r = payload
    return _classify_pair(out, d, r, first_mismatch)


def _at(key: Key) -> dict[str, Any]:
    return {"symbol": key[0], "ts_ns": key[1], "seq": key[2], "side": key[3]}


def _classify_pair(
    out: Comparison, d: LiveDecision, r: ReplayDecision, first_mismatch: Mapping[str, str]
) -> str | None:
    info = {**_at(d.key), **_live_info(d), **_replay_info(r)}
    if d.live_gated:
        out.add(LIVE_GATE, **info, detail=f"live gate: {d.reject_reason or d.status}")
        return LIVE_GATE
    if d.status == "rejected" and r.status == "rejected":
        out.matched += 1
        return None
    if not (d.accepted and r.status == "accepted"):
        if _stale_position(d, r):
            out.add(TIMING, **info, detail=STALE_POSITION)
            return TIMING
        earlier = first_mismatch.get(d.symbol)
        if earlier is not None:
            out.add(earlier, **info, detail=f"outcome differs: consequence of an earlier {earlier}")
            return earlier
        out.add(RULE_DIVERGENCE, **info, detail="outcome differs")
        return RULE_DIVERGENCE
    return _classify_fill(out, d, r, info)


STALE_POSITION = "live position snapshot older than the fills (TRADING_RECONCILE_MS)"


def _stale_position(d: LiveDecision, r: ReplayDecision) -> bool:
    """A sell live refused as `shorts_not_allowed` although the strategy's own recorded fills
    covered it: the refusal came from the broker's account positions, not from the rule. The
    cycle's snapshot is taken afresh once a fill is recorded
    (`trading.services.accounts.account_snapshot_current`), so this remains for a broker whose
    positions lag its own fill reports."""
    return (
        d.reject_reason == "shorts_not_allowed"
        and r.status == "accepted"
        and d.booked_qty is not None
        and d.booked_qty >= d.qty > 0
    )


def _classify_fill(
    out: Comparison, d: LiveDecision, r: ReplayDecision, info: dict[str, Any]
) -> str | None:
    fills = {"live_qty": d.qty, "replay_qty": r.qty, "live_fill": d.fill_price}
    fills["replay_fill"] = r.fill_price
    if abs(d.qty - r.qty) > 1e-9:
        out.add(FILL_MODEL, **info, **fills, detail="quantity differs")
        return FILL_MODEL
    if d.fill_price is None and r.fill_price is None:
        out.matched += 1
        return None
    if d.fill_price is None or r.fill_price is None:
        side = "live" if d.fill_price is None else "replay"
        out.add(FILL_MODEL, **info, **fills, detail=f"no {side} fill")
        return FILL_MODEL
    arrival = d.arrival_price or r.arrival_price
    realised = _bps(d.side, d.fill_price, arrival)
    modelled = _bps(d.side, r.fill_price, arrival)
    out.realised_bps.append(realised)
    out.modelled_bps.append(modelled)
    if abs(realised - modelled) <= FILL_TOLERANCE_BPS:
        out.matched += 1
        return None
    fills.update(realised_bps=round(realised, 4), modelled_bps=round(modelled, 4))
    if any(
        abs(_bps(d.side, d.fill_price, arrival) - _bps(d.side, f, arrival)) <= FILL_TOLERANCE_BPS
        for f in r.later_fills
    ):
        out.add(TIMING, **info, **fills, detail="filled at a later bar's price")
        return TIMING
    out.add(FILL_MODEL, **info, **fills, detail="fill price differs")
    return FILL_MODEL
