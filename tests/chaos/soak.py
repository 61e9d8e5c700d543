"""A seeded chaos soak of the trading core on the built-in simulated broker.

From a seed, `build_schedule` draws several symbols' signals over N cycles, two strategies, and
fault events (ambiguous / retryable submits, failing lookups, dropped / duplicated / reordered
trade updates, a silent stream, the kill switch, and — when asked — a kill -9 of a
`run_trade_cycle` process right after the broker accepted an order). `run_schedule` plays it:
trade cycles, reconciles, feed flushes and faults (`tests.chaos.broker`); then settles (faults
off, reconcile until quiet, one last cycle) and checks the money-safety invariants
(`check_invariants`). A broken invariant raises `SoakFailure` naming the seed and a one-line
replay command.

The database must be one that other processes can see (a transactional test database or a bench
database): the kill -9 step runs `manage.py run_trade_cycle` against it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.apps import apps
from django.db import connection
from django.test import override_settings

from tests.chaos.broker import FEED_FAULTS, SUBMIT_FAULTS, ChaosPlan, chaos_installed

ROOT = Path(__file__).resolve().parents[2]
LANE = "paper"
REPLAY_START = datetime(2026, 3, 3, 14, 31, tzinfo=UTC)
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "META", "TSLA")
SIGNAL_HEADER = "event_ts,symbol,seq,timeframe,price,macd,macd_signal,macd_hist,rsi14,spread\n"
# the two strategies: (name, buy RSI threshold, sell RSI threshold)
STRATEGIES = (("chaos_a", 35, 65), ("chaos_b", 45, 55))
TRUNCATE_APPS = ("trading", "simbroker", "orderfeed")
# the firewall's lane-wide refusals (`trading.selectors.safety.submission_verdict`): by design they
# stop every symbol, so a decision they refused is no stall caused by an ambiguous order
LANE_WIDE_STOPS = ("trading_disabled", "kill_switch_active", "emergency_stop_active")


def replay_command(seed: int, *, kill: bool) -> str:
    flag = " --kill-every 1" if kill else " --kill-every 0"
    return f".venv/bin/python bench/chaos_soak.py --schedules 1 --seed {seed}{flag}"


class SoakFailure(AssertionError):
    def __init__(self, seed: int, kill: bool, problems: list[str]) -> None:
        self.seed = seed
        self.problems = problems
        super().__init__(
            f"chaos schedule seed={seed} failed: {'; '.join(problems[:5])}\n"
            f"replay: {replay_command(seed, kill=kill)}"
        )


@dataclass(frozen=True)
class Step:
    """What happens in one cycle."""

    submit_faults: tuple[str, ...] = ()  # the cycle's submits' faults, in order
    lookup_failures: int = 0
    feed_fault: str = ""
    silent: bool = False
    kill_switch: bool = False
    kill9: bool = False  # the cycle runs in a process killed after its first broker submit
    reconcile: bool = False


@dataclass(frozen=True)
class Schedule:
    seed: int
    symbols: tuple[str, ...]
    rows: tuple[
        tuple[int, str, Decimal, float, float, float], ...
    ]  # cycle, sym, px, macd, sig, rsi
    steps: tuple[Step, ...]
    fallback_limit: float
    kill: bool

    @property
    def cycles(self) -> int:
        return len(self.steps)


def _rows(rng: random.Random, symbols: tuple[str, ...], cycles: int) -> list[Any]:
    prices = {s: Decimal(rng.randrange(40, 240)) for s in symbols}
    rows = []
    for cycle in range(cycles):
        for symbol in symbols:
            drift = Decimal(rng.randrange(-150, 151)) / Decimal(10000)
            prices[symbol] = (prices[symbol] * (1 + drift)).quantize(Decimal("0.01"))
            regime = rng.choices(("buy", "sell", "hold"), weights=(5, 3, 2))[0]
            if regime == "buy":
                macd, sig, rsi = 1.0, 0.4, float(rng.randrange(15, 45))
            elif regime == "sell":
                macd, sig, rsi = -0.5, 0.2, float(rng.randrange(56, 85))
            else:
                macd, sig, rsi = 0.3, 0.1, 50.0
            rows.append((cycle, symbol, prices[symbol], macd, sig, rsi))
    return rows


def _step(rng: random.Random, *, kill9: bool, reconcile: bool) -> Step:
    submits = tuple(
        rng.choices(("", *SUBMIT_FAULTS), weights=(10, 4, 2, 2))[0]
        for _ in range(rng.randrange(0, 4))
    )
    return Step(
        submit_faults=submits,
        lookup_failures=rng.choices((0, 1, 3), weights=(6, 2, 1))[0],
        feed_fault=rng.choices(("", *FEED_FAULTS), weights=(5, 2, 1, 2))[0],
        kill9=kill9,
        reconcile=reconcile,
    )


def build_schedule(seed: int, *, kill: bool = False, faults: bool = True) -> Schedule:
    """A schedule drawn from `seed` alone; `kill`: one cycle runs in a process killed after the
    broker accepted its order; `faults=False`: the same signals with no fault (the baseline)."""
    rng = random.Random(seed)
    symbols = tuple(rng.sample(SYMBOLS, rng.randrange(3, 5)))
    cycles = rng.randrange(6, 11)
    rows = _rows(rng, symbols, cycles)
    kill_at = rng.randrange(1, cycles - 2) if kill else -1
    steps = [_step(rng, kill9=i == kill_at, reconcile=rng.random() < 0.4) for i in range(cycles)]
    steps = _with_windows(rng, steps)
    if not faults:  # the same signals and reconciles, nothing else
        steps = [Step(reconcile=step.reconcile) for step in steps]
    return Schedule(
        seed=seed,
        symbols=symbols,
        rows=tuple(rows),
        steps=tuple(steps),
        fallback_limit=rng.choices((0.25, 0.6, 1.0), weights=(1, 2, 3))[0],
        kill=kill and faults,
    )


def _with_windows(rng: random.Random, steps: list[Step]) -> list[Step]:
    """A silent-stream window and a kill-switch window, each at a random place (or none)."""
    out = list(steps)
    n = len(out)
    for kind in ("silent", "kill_switch"):
        if rng.random() < 0.5:
            continue
        start = rng.randrange(0, n - 1)
        for i in range(start, min(n - 1, start + rng.randrange(1, 4))):
            if not out[i].kill9:
                out[i] = _replace(out[i], **{kind: True})
    return out


def _replace(step: Step, **changes: Any) -> Step:
    return Step(**{**step.__dict__, **changes})


def write_signals(schedule: Schedule, path: Path) -> Path:
    lines = [SIGNAL_HEADER]
    for seq, (cycle, symbol, price, macd, sig, rsi) in enumerate(schedule.rows, start=1):
        ts = (REPLAY_START + timedelta(seconds=60 * cycle)).isoformat().replace("+00:00", "Z")
        lines.append(f"{ts},{symbol},{seq},1Min,{price},{macd},{sig},{macd - sig:.6f},{rsi},0.02\n")
    path.write_text("".join(lines))
    return path


def soak_settings(schedule: Schedule, signals: Path, *, kill_switch: bool) -> dict[str, Any]:
    lane = {"label": LANE, "mode": "paper", "broker": "simulated", "enabled": True}
    return {
        "TRADING_ENABLED": True,
        "TRADING_KILL_SWITCH_ENABLED": kill_switch,
        "TRADING_FEATURE_FLAGS_ENABLED": False,
        "TRADING_SIGNAL_SOURCE": "replay",
        "TRADING_SIGNAL_REPLAY_PATH": str(signals),
        "TRADING_SIGNAL_REPLAY_SPEED": 1.0,
        "TRADING_SIGNAL_REPLAY_LOOP": False,
        "TRADING_EXECUTION_PREFER_LIMIT": False,
        "TRADING_STRATEGY_CONFIG_PATH": "",
        "TRADING_FEATURE_QUALITY_ENABLED": False,
        "TRADING_LANES": [{**lane, "api_key": "", "secret_key": "", "base_url": ""}],
        "TRADING_ORDER_FEED_ENABLED": False,
        "TRADING_ORDER_FEED_BOOTSTRAP_SERVERS": "",
        "TRADING_EMERGENCY_STOP_ENABLED": True,
        "TRADING_ROLLBACK_FALLBACK_RATIO_LIMIT": schedule.fallback_limit,
        # an order unknown to the simulated broker is unknown at once (no eventual consistency)
        "TRADING_SUBMIT_UNCONFIRMED_GRACE_SECONDS": 0,
    }


def subprocess_env(
    schedule: Schedule, signals: Path, dsn: str, *, kill_switch: bool
) -> dict[str, str]:
    """The same configuration for a `manage.py` process (environment variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADING_", "LLM_"))}
    env.pop("TORGHUT_FAULT_INJECT", None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "torghut_site.settings",
            "TORGHUT_ENV_FILE": "/nonexistent",
            "DB_DSN": dsn,
            "LOG_LEVEL": "warning",
            "TRADING_ENABLED": "true",
            "TRADING_KILL_SWITCH_ENABLED": "true" if kill_switch else "false",
            "TRADING_SIGNAL_SOURCE": "replay",
            "TRADING_SIGNAL_REPLAY_PATH": str(signals),
            "TRADING_SIGNAL_REPLAY_SPEED": "1",
            "TRADING_SIGNAL_REPLAY_LOOP": "false",
            "TRADING_EXECUTION_PREFER_LIMIT": "false",
            "TRADING_FEATURE_QUALITY_ENABLED": "false",
            "TRADING_EMERGENCY_STOP_ENABLED": "true",
            "TRADING_ROLLBACK_FALLBACK_RATIO_LIMIT": str(schedule.fallback_limit),
            "TORGHUT_FAULT_INJECT": "after_broker_submit",
        }
    )
    return env


def reset_database() -> None:
    """Empty every table of the trading apps (one TRUNCATE), as between two tests."""
    tables = [
        model._meta.db_table
        for app in TRUNCATE_APPS
        for model in apps.get_app_config(app).get_models(include_auto_created=True)
        if model._meta.managed
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def seed_lane() -> None:
    from trading.models import Strategy, TradeCursor

    for name, buy_rsi, sell_rsi in STRATEGIES:
        Strategy.objects.create(
            name=name,
            strategy_type="legacy_macd_rsi",
            enabled=True,
            base_timeframe="1Min",
            max_notional_per_trade=Decimal(1000),
            params={"buy_rsi_threshold": buy_rsi, "sell_rsi_threshold": sell_rsi},
        )
    TradeCursor.objects.create(
        source="replay", account_label=LANE, state={"anchor": REPLAY_START.isoformat()}
    )


@dataclass
class ScheduleReport:
    seed: int
    cycles: int = 0
    seconds: float = 0.0
    faults: dict[str, int] = field(default_factory=dict)
    ambiguous_seconds: list[float] = field(default_factory=list)
    ambiguous_cycles: list[int] = field(default_factory=list)  # cycles from answer to settled
    orders: int = 0
    decisions: int = 0
    killed: int = 0
    emergency_stop: bool = False
    witness_cycles: int = 0  # cycles that sent an order for Y while X was ambiguous
    problems: list[str] = field(default_factory=list)


# -- running ----------------------------------------------------------------------------------


@dataclass
class Run:
    """What the runner saw while playing a schedule (for the invariants)."""

    schedule: Schedule
    plan: ChaosPlan
    report: ScheduleReport
    signals: Path
    dsn: str
    kill_windows: list[tuple[datetime, datetime]] = field(default_factory=list)


def run_schedule(
    schedule: Schedule, *, workdir: Path, dsn: str, faults: bool = True
) -> ScheduleReport:
    """Play one schedule from an empty database and check the invariants (raises
    `SoakFailure`)."""
    reset_database()
    signals = write_signals(schedule, workdir / f"signals-{schedule.seed}.csv")
    plan = ChaosPlan(rng=random.Random(schedule.seed * 7919 + 1), enabled=faults)
    run = Run(schedule, plan, ScheduleReport(seed=schedule.seed), signals, dsn)
    started = time.perf_counter()
    try:
        with (
            override_settings(**soak_settings(schedule, signals, kill_switch=False)),
            chaos_installed(plan),
        ):
            seed_lane()
            for index, step in enumerate(schedule.steps):
                _play_step(run, index, step)
            _settle(run)
            run.report.seconds = time.perf_counter() - started
            run.report.problems = check_invariants(run)
    except SoakFailure:
        raise
    except Exception as exc:
        raise SoakFailure(schedule.seed, schedule.kill, [f"{type(exc).__name__}: {exc}"]) from exc
    run.report.cycles = schedule.cycles
    run.report.faults = dict(plan.injected)
    run.report.ambiguous_cycles = [
        a.resolved_step - a.at_step for a in plan.ambiguous.values() if a.resolved_step is not None
    ]
    run.report.ambiguous_seconds = [
        a.seconds for a in plan.ambiguous.values() if a.seconds is not None
    ]
    if run.report.problems:
        raise SoakFailure(schedule.seed, schedule.kill, run.report.problems)
    return run.report


def _play_step(run: Run, index: int, step: Step) -> None:
    from django.utils import timezone

    from trading.models import TradeDecision
    from trading.services.cycle import trading_cycle_run
    from trading.services.reconcile import reconcile_lane

    plan = run.plan
    plan.step = index
    plan.submit_faults = list(step.submit_faults)
    plan.lookup_failures = step.lookup_failures
    plan.feed_fault = step.feed_fault
    plan.silent = step.silent
    for kind in ("silent", "kill_switch"):
        if plan.enabled and getattr(step, kind):
            plan.injected[f"{kind}_cycle"] += 1
    ambiguous_symbols = {a.symbol for a in plan.unresolved()}
    last_pk = TradeDecision.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    began = timezone.now()
    open_before = _open_at_broker() if step.kill_switch else []
    with override_settings(TRADING_KILL_SWITCH_ENABLED=step.kill_switch):
        if step.kill9 and plan.enabled:
            run.report.killed += _kill9_cycle(run, index, kill_switch=step.kill_switch)
        else:
            now = REPLAY_START + timedelta(seconds=60 * index + 30)
            trading_cycle_run(account_label=LANE, now=now)
        if step.kill_switch:
            run.kill_windows.append((began, timezone.now()))
            _kill_switch_cancelled(run, index, open_before)
        _resolve(plan)
        if step.reconcile:
            reconcile_lane(account_label=LANE)
            _resolve(plan)
    _emergency_stop_cancelled(run, index)
    run.report.witness_cycles += _witness(run, index, ambiguous_symbols, last_pk)


def _kill9_cycle(run: Run, index: int, *, kill_switch: bool) -> int:
    """The cycle in a `run_trade_cycle` process killed (SIGKILL) right after the broker accepted
    its first order (`TORGHUT_FAULT_INJECT=after_broker_submit`). The replay is re-anchored so
    that the process's wall clock stands at this cycle's place in the file; the dead process's
    lane lease is let lapse (as TRADING_LANE_LEASE_SECONDS would)."""
    from django.utils import timezone

    from trading.models import LaneState, TradeCursor

    cursors = TradeCursor.objects.filter(source="replay", account_label=LANE)
    # 5 s into the cycle's minute at launch: the process may take up to 55 s to start and still
    # read exactly this cycle's rows (and the ones a crashed cycle left unread)
    offset = timedelta(seconds=60 * index + 5)
    cursors.update(state={"anchor": (timezone.now() - offset).isoformat()})
    env = subprocess_env(run.schedule, run.signals, run.dsn, kill_switch=kill_switch)
    try:
        done = subprocess.run(
            [sys.executable, "manage.py", "run_trade_cycle", "--lane", LANE],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        cursors.update(state={"anchor": REPLAY_START.isoformat()})
        LaneState.objects.filter(account_label=LANE).update(
            lease_until=timezone.now() - timedelta(seconds=1)
        )
    if done.returncode == -signal.SIGKILL:
        run.plan.injected["kill9_after_broker_submit"] += 1
        return 1
    if done.returncode != 0:
        raise RuntimeError(f"run_trade_cycle exited {done.returncode}: {done.stderr[-2000:]}")
    return 0


def _open_at_broker() -> list[str]:
    from trading.simbroker.models import SimOrder

    return list(
        SimOrder.objects.filter(
            account__account_label=LANE, status__in=("accepted", "partially_filled")
        ).values_list("client_order_id", flat=True)
    )


def _kill_switch_cancelled(run: Run, index: int, open_before: list[str]) -> None:
    """A cycle under the kill switch cancels every order open at the broker when it starts (none
    fills meanwhile) and leaves none open."""
    from trading.simbroker.models import SimOrder

    not_cancelled = list(
        SimOrder.objects.filter(client_order_id__in=open_before)
        .exclude(status="canceled")
        .values_list("client_order_id", "status")
    )
    if not_cancelled:
        run.report.problems.append(
            f"cycle {index}: kill switch on, orders open at its start not cancelled: "
            f"{not_cancelled}"
        )
    still_open = _open_at_broker()
    if still_open:
        run.report.problems.append(
            f"cycle {index}: kill switch on, orders still open at the broker: {still_open}"
        )


def _emergency_stop_cancelled(run: Run, index: int) -> None:
    """A cycle that ends with the emergency stop latched leaves no order open at the broker (the
    latch cancels the lane's orders; nothing is accepted after it)."""
    from trading.selectors.safety import emergency_stop_active

    if not emergency_stop_active():
        return
    still_open = _open_at_broker()
    if still_open:
        run.report.problems.append(
            f"cycle {index}: emergency stop latched, orders still open at the broker: {still_open}"
        )


def _resolve(plan: ChaosPlan) -> None:
    """Stamp the ambiguous submits that are settled now: their execution is recorded (adopted),
    or their decision closed."""
    from trading.models import Execution, TradeDecision

    open_ = plan.unresolved()
    if not open_:
        return
    ids = [a.client_order_id for a in open_]
    recorded = set(
        Execution.objects.filter(account_label=LANE, client_order_id__in=ids).values_list(
            "client_order_id", flat=True
        )
    )
    closed = set(
        TradeDecision.objects.filter(account_label=LANE, client_order_id__in=ids)
        .exclude(status__in=("planned", "submitting"))
        .values_list("client_order_id", flat=True)
    )
    now = time.perf_counter()
    for item in open_:
        if item.client_order_id in recorded | closed:
            item.resolved_at = now
            item.resolved_step = plan.step


def _witness(run: Run, index: int, ambiguous_symbols: set[str], last_pk: int) -> int:
    """While an ambiguous order on X was unresolved, every decision of this cycle on another
    symbol that passed its gates reached the broker (or met a fault): no lane-wide stall."""
    from trading.models import TradeDecisionTransition
    from trading.simbroker.models import SimOrder

    if not ambiguous_symbols:
        return 0
    passed = list(
        TradeDecisionTransition.objects.filter(decision__pk__gt=last_pk, to_status="submitting")
        .exclude(decision__reject_reason__in=LANE_WIDE_STOPS)
        .values_list("decision__symbol", "decision__client_order_id")
    )
    others = [(s, c) for s, c in passed if s not in ambiguous_symbols]
    sent = set(
        SimOrder.objects.filter(client_order_id__in=[c for _, c in others]).values_list(
            "client_order_id", flat=True
        )
    )
    for symbol, coid in others:
        if coid not in sent and coid not in run.plan.refused and coid not in run.plan.ambiguous:
            run.report.problems.append(
                f"cycle {index}: {symbol} passed its gates while {sorted(ambiguous_symbols)} "
                f"was ambiguous but reached no broker ({coid})"
            )
    return 1 if sent else 0


def _settle(run: Run) -> None:
    """Faults off; reconcile until nothing moves; one last (signal-less) cycle that evaluates
    the latches; reconcile once more."""
    from trading.models import TradeDecision
    from trading.selectors.safety import kill_switch_state
    from trading.services.cycle import trading_cycle_run
    from trading.services.reconcile import reconcile_lane

    run.plan.disarm()
    run.plan.step = run.schedule.cycles
    for _ in range(10):
        result = reconcile_lane(account_label=LANE)
        _resolve(run.plan)
        moved = result.updated + result.adopted + result.unconfirmed + result.errors
        if not moved and not TradeDecision.objects.filter(status="submitting").exists():
            break
    final_kill = run.schedule.steps[-1].kill_switch
    with override_settings(TRADING_KILL_SWITCH_ENABLED=final_kill):
        now = REPLAY_START + timedelta(seconds=60 * run.schedule.cycles + 30)
        trading_cycle_run(account_label=LANE, now=now)
        reconcile_lane(account_label=LANE)
        _resolve(run.plan)
        if kill_switch_state().active != final_kill:
            run.report.problems.append(f"kill switch is not as set ({final_kill})")


# -- invariants -------------------------------------------------------------------------------


def check_invariants(run: Run) -> list[str]:
    problems = list(run.report.problems)
    problems += _orders_match(run)
    problems += _books_match()
    problems += _latches_right(run)
    problems += [
        f"ambiguous submit {a.client_order_id} ({a.kind}) never settled"
        for a in run.plan.unresolved()
    ]
    return problems


def _orders_match(run: Run) -> list[str]:
    """One broker order per client order id and per decision; every broker order ours, with one
    execution whose status and filled qty are the broker's; nothing left `submitting`."""
    from trading.models import Execution, TradeDecision
    from trading.simbroker.models import SimOrder

    problems: list[str] = []
    orders = list(SimOrder.objects.filter(account__account_label=LANE))
    decisions = {d.client_order_id: d for d in TradeDecision.objects.filter(account_label=LANE)}
    executions: dict[str, list[Execution]] = {}
    for execution in Execution.objects.filter(account_label=LANE):
        executions.setdefault(execution.client_order_id, []).append(execution)
    coids = [o.client_order_id for o in orders]
    if len(set(coids)) != len(coids):
        problems.append(
            f"duplicate broker orders: {sorted(c for c in coids if coids.count(c) > 1)}"
        )
    run.report.orders = len(orders)
    run.report.decisions = len(decisions)
    for order in orders:
        decision = decisions.get(order.client_order_id)
        rows = executions.get(order.client_order_id, [])
        if decision is None:
            problems.append(f"orphan order {order.client_order_id}: no decision")
            continue
        if decision.status == "rejected":
            problems.append(f"order {order.client_order_id} at the broker, decision rejected")
        if len(rows) != 1:
            problems.append(f"order {order.client_order_id} has {len(rows)} executions")
            continue
        got = (rows[0].decision_id, rows[0].status, rows[0].filled_qty)
        want = (decision.pk, order.status, order.filled_qty)
        if got != want:
            problems.append(f"execution {order.client_order_id} is {got}, broker says {want}")
    extra = set(executions) - set(coids)
    if extra:
        problems.append(f"executions without a broker order: {sorted(extra)}")
    stuck = [c for c, d in decisions.items() if d.status in ("planned", "submitting")]
    if stuck:
        problems.append(f"decisions left planned/submitting after settling: {stuck}")
    return problems


def _books_match() -> list[str]:
    """Strategy books summed over strategies equal the broker's position, per symbol."""
    from trading.selectors.allocation import strategy_books
    from trading.simbroker.models import SimPosition

    books = strategy_books(account_label=LANE)
    summed: dict[str, Decimal] = {}
    for positions in books.positions.values():
        for symbol, qty in positions.items():
            summed[symbol] = summed.get(symbol, Decimal(0)) + qty
    broker = {
        p.symbol: p.qty
        for p in SimPosition.objects.filter(account__account_label=LANE).exclude(qty=0)
    }
    summed = {s: q for s, q in summed.items() if q}
    if summed != broker:
        return [f"strategy books {summed} != broker positions {broker}"]
    return []


def _max_fallback_ratio(limit_submits: int = 20) -> tuple[float, int]:
    """The highest fallback ratio any prefix of the lane's answered submits reached, over the
    last `limit_submits` of that prefix (counted only from 4 submits), and the final window."""
    from trading.models import TradeDecision
    from trading.models.decisions import FALLBACK_ANSWERS

    answers = list(
        TradeDecision.objects.filter(account_label=LANE, submit_answered_at__isnull=False)
        .exclude(submit_answer="")
        .order_by("submit_answered_at", "pk")
        .values_list("submit_answer", flat=True)
    )
    best = 0.0
    for end in range(4, len(answers) + 1):
        window = answers[max(0, end - limit_submits) : end]
        best = max(best, sum(1 for a in window if a in FALLBACK_ANSWERS) / len(window))
    return best, len(answers)


def _latches_right(run: Run) -> list[str]:
    """The emergency stop latched only for a fallback ratio the schedule pushed over its limit
    (and then, nothing sent after it); never missed; the kill switch as set, nothing sent while
    it was on."""
    from trading.models import SafetyState
    from trading.selectors.safety import fallback_window
    from trading.simbroker.models import SimOrder

    problems: list[str] = []
    limit = run.schedule.fallback_limit
    state = SafetyState.objects.filter(scope="global").first()
    orders = SimOrder.objects.filter(account__account_label=LANE)
    best, answered = _max_fallback_ratio()
    if state is not None and state.emergency_stop_active:
        run.report.emergency_stop = True
        reasons = list(state.emergency_stop_reasons)
        if reasons != ["fallback_ratio_exceeded"]:
            problems.append(f"emergency stop for {reasons}: not a fault this schedule injected")
        if best < limit:
            problems.append(f"fallback latch at ratio {best:.2f} < limit {limit}")
        late = orders.filter(submitted_at__gt=state.emergency_stop_triggered_at).count()
        if late:
            problems.append(f"{late} orders accepted after the emergency stop latched")
    else:
        window = fallback_window(account_label=LANE)
        if window.counts and window.ratio >= limit:
            problems.append(f"fallback ratio {window.ratio:.2f} >= {limit} but no emergency stop")
    for began, ended in run.kill_windows:
        sent = orders.filter(submitted_at__gte=began, submitted_at__lte=ended).count()
        if sent:
            problems.append(f"{sent} orders accepted while the kill switch was on")
    return problems
