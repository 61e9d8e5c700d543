"""Research-loop metrics (names follow the original's `torghut_trading_*` governance group)."""

from __future__ import annotations

from prometheus_client import Counter

LANE_RUNS = Counter(
    "torghut_trading_autonomy_runs_total",
    "Research lane runs by trigger and status.",
    ["trigger", "status"],
)
ARTIFACT_CONFLICTS = Counter(
    "torghut_trading_autonomy_artifact_conflicts_total",
    "Write-once research artifacts refused (different bytes at a written path) by reason.",
    ["reason"],
)
PROMOTION_ACTIONS = Counter(
    "torghut_trading_autonomy_promotion_actions_total",
    "Promotion ledger actions (promote, deny, demote, rollback, hold) by mode.",
    ["action", "mode"],
)
DRIFT_CHECKS = Counter("torghut_trading_drift_detection_checks_total", "Drift checks run.")
DRIFT_INCIDENTS = Counter(
    "torghut_trading_drift_incidents_total", "Drift checks that found at least one reason code."
)
DRIFT_ACTIONS = Counter(
    "torghut_trading_drift_action_total", "Drift actions triggered, by type.", ["action"]
)
DRIFT_COOLDOWN_SKIPS = Counter(
    "torghut_trading_drift_action_cooldown_skip_total",
    "Drift actions skipped because the same action ran within its cooldown.",
    ["action"],
)
DRIFT_ROLLBACKS = Counter(
    "torghut_trading_drift_rollback_trigger_total",
    "Promoted champions demoted by drift governance.",
)
DRIFT_PROMOTION_BLOCKS = Counter(
    "torghut_trading_drift_promotion_block_total",
    "Live promotions refused for missing, stale or failing drift evidence.",
)
EVIDENCE_CONTINUITY_CHECKS = Counter(
    "torghut_trading_evidence_continuity_checks_total", "Evidence continuity audits run."
)
EVIDENCE_CONTINUITY_FAILURES = Counter(
    "torghut_trading_evidence_continuity_failures_total",
    "Evidence continuity audits that found runs with missing ledger rows.",
)
REPLAY_CHECKS = Counter(
    "torghut_research_replay_checks_total",
    "Live-versus-replay checks written (one per session, lane and strategy), by status.",
    ["status"],
)
REPLAY_MISMATCHES = Counter(
    "torghut_research_replay_mismatches_total",
    "Decisions the live-versus-replay check classified as mismatches, by class (rule_divergence "
    "is the unexplained one).",
    ["class"],
)
