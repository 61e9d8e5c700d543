"""Trading metrics (names kept from the original service, docs/compatibility.md#metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DECISIONS = Counter(
    "torghut_trading_decisions_total",
    "Trade decisions by strategy and outcome.",
    ["strategy", "outcome"],
)
DECISION_REJECTS = Counter(
    "torghut_trading_decision_rejects_total", "Rejected decisions by reason.", ["reason"]
)
DUPLICATE_DECISIONS = Counter(
    "torghut_trading_duplicate_decisions_total", "Signals already decided (same decision hash)."
)
ORDERS_SUBMITTED = Counter(
    "torghut_trading_orders_submitted_total",
    "Orders accepted by the broker on submit.",
    ["account"],
)
ORDERS_FAILED = Counter(
    "torghut_trading_orders_failed_total",
    "Submits that failed, by classification.",
    ["account", "reason"],
)
ORDERS_ADOPTED = Counter(
    "torghut_trading_orders_adopted_total",
    "Orders found at the broker by client order id instead of submitted again.",
    ["account", "source"],
)
ORDERS_REJECTED = Counter(
    "torghut_trading_orders_rejected_total",
    "Decisions rejected before reaching the broker.",
    ["account"],
)
FIREWALL_BLOCKS = Counter(
    "torghut_trading_firewall_blocks_total",
    "Submissions refused by the order firewall.",
    ["reason"],
)
RECONCILE_RESULTS = Counter(
    "torghut_trading_reconcile_updates_total", "Reconciliation outcomes.", ["account", "result"]
)
CYCLE_DURATION = Histogram(
    "torghut_trading_cycle_duration_seconds",
    "Duration of one trade cycle of a lane.",
    ["account"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CYCLES = Counter("torghut_trading_cycles_total", "Trade cycles by outcome.", ["account", "outcome"])
SIGNALS = Counter("torghut_trading_signals_total", "Signals read from the source.", ["account"])
SIGNALS_INVALID = Counter(
    "torghut_trading_signals_invalid_total", "Signal rows skipped as malformed.", ["account"]
)
NO_SIGNAL = Counter(
    "torghut_trading_no_signal_reason_total",
    "Cycles without signals by reason.",
    ["account", "reason"],
)
# the original's signal-continuity counters (docs/compatibility.md#metrics): every cycle that
# read no signal, split into the ones a closed market explains (`expected`:
# TRADING_SIGNAL_MARKET_CLOSED_EXPECTED_REASONS while the market is closed) and the rest
# (`actionable`), and each actionable streak reaching
# TRADING_SIGNAL_NO_SIGNAL_STREAK_ALERT_THRESHOLD
NO_SIGNAL_WINDOWS = Counter(
    "torghut_trading_no_signal_windows_total", "Cycles that read no signal.", ["account"]
)
SIGNAL_STALENESS = {
    kind: Counter(
        f"torghut_trading_signal_{kind}_staleness_total",
        f"Cycles without a signal that are {kind} (market closed and an expected reason, or not).",
        ["account", "reason"],
    )
    for kind in ("expected", "actionable")
}
SIGNAL_STALENESS_ALERTS = Counter(
    "torghut_trading_signal_staleness_alert_total",
    "Actionable no-signal streaks reaching TRADING_SIGNAL_NO_SIGNAL_STREAK_ALERT_THRESHOLD.",
    ["account", "reason"],
)
SIGNAL_LAG = Gauge(
    "torghut_trading_signal_lag_seconds",
    "Seconds between now and the newest signal seen.",
    ["account"],
    multiprocess_mode="mostrecent",
)
KILL_SWITCH_CANCELS = Counter(
    "torghut_trading_kill_switch_cancels_total",
    "Open orders cancelled by the kill switch.",
    ["account"],
)
EMERGENCY_STOPS = Counter(
    "torghut_trading_emergency_stop_total", "Emergency stop latches by reason.", ["reason"]
)
LANE_DRAWDOWN = Gauge(
    "torghut_trading_lane_drawdown_ratio",
    "A lane's equity below its high-water mark, as a fraction of the mark.",
    ["account"],
    multiprocess_mode="mostrecent",
)
BOOK_MISMATCH = Gauge(
    "torghut_trading_book_mismatch",
    "Broker position minus the sum of the lane's strategy books (and unattributed orders), "
    "per symbol, at the last reconcile.",
    ["account", "symbol"],
    multiprocess_mode="mostrecent",
)
STRATEGY_ERRORS = Counter(
    "torghut_trading_strategy_errors_total", "Strategy evaluation errors.", ["strategy"]
)

# -- LLM review (the original's `torghut_trading_llm_*` names, docs/compatibility.md#metrics) ---
LLM_REQUESTS = Counter(
    "torghut_trading_llm_requests_total", "LLM reviews run, by runtime.", ["runtime"]
)
LLM_VERDICTS = {
    verdict: Counter(f"torghut_trading_llm_{verdict}_total", f"LLM reviews answering {verdict}.")
    for verdict in ("approve", "veto", "adjust", "abstain", "escalate", "error")
}
LLM_ERRORS = {
    kind: Counter(f"torghut_trading_llm_{kind}_total", f"LLM reviews failing with {kind}.")
    for kind in ("parse_error", "validation_error", "circuit_open", "guardrail_block")
}
LLM_SHADOW = Counter("torghut_trading_llm_shadow_total", "LLM reviews recorded in shadow mode.")
LLM_TOKENS_PROMPT = Counter("torghut_trading_llm_tokens_prompt_total", "Prompt tokens spent.")
LLM_TOKENS_COMPLETION = Counter(
    "torghut_trading_llm_tokens_completion_total", "Completion tokens spent."
)
LLM_REVIEW_LATENCY = Histogram(
    "torghut_trading_llm_review_latency_seconds",
    "Wall time of one LLM review (all calls).",
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
)
LLM_REVIEW_EXPIRED = Counter(
    "torghut_trading_llm_review_expired_total", "Reviews whose deadline passed first."
)
LLM_DSPY_FALLBACK = Counter(
    "torghut_trading_llm_dspy_fallback_total", "DSPy reviews that fell back to the legacy call."
)
LLM_EVIDENCE_REJECTIONS = Counter(
    "torghut_trading_llm_evidence_rejections_total",
    "LLM answers rejected for a number the decision's snapshot does not support, by reason "
    "(trading/llm/evidence.py; one count per reason).",
    ["reason"],
)
LLM_MARKET_CONTEXT_BLOCK = Counter(
    "torghut_trading_llm_market_context_block_total",
    "Reviews stopped before the model call by an unusable market context (required or "
    "fail_closed).",
)
LLM_MARKET_CONTEXT_ERROR = Counter(
    "torghut_trading_llm_market_context_error_total",
    "Market-context fetches that failed (HTTP, timeout, size, JSON or shape).",
)
LLM_MARKET_CONTEXT_REASON = Counter(
    "torghut_trading_llm_market_context_reason_total",
    "Unusable market contexts, by reason.",
    ["reason"],
)
LLM_MARKET_CONTEXT_SHADOW = Counter(
    "torghut_trading_llm_market_context_shadow_total",
    "Reviews that went on without an unusable market context (shadow_only, not required).",
)
# the original's policy, guardrail and committee counters (docs/compatibility.md#metrics)
LLM_FAIL_MODE_OVERRIDE = Counter(
    "torghut_trading_llm_fail_mode_override_total",
    "Reviews whose effective fail mode differs from LLM_FAIL_MODE (strict_veto enforcement, or "
    "pass_through on a live lane without LLM_FAIL_OPEN_LIVE_APPROVED).",
)
LLM_FAIL_MODE_EXCEPTION = Counter(
    "torghut_trading_llm_fail_mode_exception_total",
    "Reviews on a live lane whose pass_through fail mode was honoured by "
    "LLM_FAIL_OPEN_LIVE_APPROVED.",
)
LLM_STAGE_POLICY_VIOLATION = Counter(
    "torghut_trading_llm_stage_policy_violation_total",
    "Reviews a rollout-stage or guardrail rule forced into shadow or blocked.",
)
LLM_POLICY_RESOLUTION = Counter(
    "torghut_trading_llm_policy_resolution_total",
    "How each review's posture resolved: compliant, intentional_exception or violation.",
    ["classification"],
)
LLM_GUARDRAIL_SHADOW = Counter(
    "torghut_trading_llm_guardrail_shadow_total",
    "Reviews recorded in shadow by a guardrail (stage or governance), not by LLM_SHADOW_MODE.",
)
LLM_POLICY_FALLBACK = Counter(
    "torghut_trading_llm_policy_fallback_total",
    "Reviews decided by the fail mode (no usable answer: error, circuit, guardrail, budget, "
    "expiry).",
)
LLM_COMMITTEE_REQUESTS = Counter(
    "torghut_trading_llm_committee_requests_total", "Committee role calls.", ["role"]
)
LLM_COMMITTEE_LATENCY_MS = Gauge(
    "torghut_trading_llm_committee_latency_ms",
    "Last observed committee role latency in milliseconds.",
    ["role"],
    multiprocess_mode="mostrecent",
)
LLM_COMMITTEE_LATENCY = Histogram(
    "torghut_trading_llm_committee_role_latency_seconds",
    "Committee role call latency.",
    ["role"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30),
)
LLM_COMMITTEE_VERDICT = Counter(
    "torghut_trading_llm_committee_verdict_total",
    "Committee role votes by role and verdict (an error vote counts as its fail-closed verdict).",
    ["role", "verdict"],
)
LLM_COMMITTEE_SCHEMA_ERROR = Counter(
    "torghut_trading_llm_committee_schema_error_total",
    "Committee role answers outside the vote contract.",
    ["role"],
)
LLM_COMMITTEE_VETO = Counter(
    "torghut_trading_llm_committee_veto_total", "Committee role vetoes.", ["role"]
)
LLM_COMMITTEE_VETO_ALIGNMENT = Counter(
    "torghut_trading_llm_committee_veto_alignment_total",
    "Reviews with a mandatory committee veto whose final effect was a veto.",
)
TRADE_UPDATES_GAP = Gauge(
    "torghut_trading_trade_updates_gap_seconds",
    "Seconds since the lane's last broker trade-updates stream message while the stream is "
    "unhealthy (open orders, market open, stream disconnected or silent); 0 when healthy.",
    ["account"],
    multiprocess_mode="mostrecent",
)
TRADE_STREAM_GAP_FILLS = Counter(
    "torghut_trading_trade_updates_gap_fill_total",
    "Gap-fill runs of an unhealthy trade-updates stream, by outcome.",
    ["account", "outcome"],
)
FILL_CHECKS = Counter(
    "torghut_trading_fill_checks_total",
    "Paper and simulated fills checked against their minute bar, by verdict.",
    ["verdict"],
)
# -- LLM spend budgets (trading/services/llm_budget.py) -----------------------------------------
LLM_SPEND_USD = Counter(
    "torghut_llm_spend_usd_total",
    "LLM spend settled (reported usage at configured prices; swept reservations at their "
    "reserved amount), by model.",
    ["model"],
)
LLM_SPEND_TODAY = Gauge(
    "torghut_llm_spend_reserved_today_usd",
    "Today's (UTC) reserved and settled LLM spend over all strategies.",
    multiprocess_mode="mostrecent",
)
LLM_SPEND_TODAY_BY_SCOPE = Gauge(
    "torghut_trading_llm_spend_today_usd",
    "Today's (UTC) reserved and settled LLM spend by scope: `all`, or `strategy:<name>` (one "
    "label value per configured strategy).",
    ["scope"],
    multiprocess_mode="mostrecent",
)
LLM_STABILITY_PROBES = Counter(
    "torghut_trading_llm_stability_probes_total",
    "Stability probes (a completed review asked again once), by whether the verdict flipped.",
    ["flipped"],
)
LLM_COST_PER_1000_REVIEWS = Gauge(
    "torghut_llm_cost_per_1000_reviews_usd",
    "Today's (UTC) LLM spend per 1,000 reviews that reserved a call.",
    multiprocess_mode="mostrecent",
)
LLM_BUDGET_EXCEEDED = Counter(
    "torghut_llm_budget_exceeded_total",
    "Reviews skipped because a spend cap would be exceeded, by scope.",
    ["scope"],
)
NOTIFICATIONS = Counter(
    "torghut_notifications_total",
    "Operator notification post attempts by event kind and outcome (sent; retry: failed, will be "
    "tried again; failed: the last attempt failed, the row is left failed).",
    ["kind", "status"],
)
