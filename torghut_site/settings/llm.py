"""LLM trade review and DSPy programs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from torghut_site.settings.base import env
from torghut_site.settings.trading_lanes import JANGAR_BASE_URL

# --------------------------------------------------------------------------------------------
# LLM trade review (docs/compatibility.md#review-contract) and DSPy programs
# (docs/compatibility.md#dspy-contract). The review runs in a Celery task, never in the trade cycle:
# a decision that needs it waits in `pending_review` until the verdict or the deadline. An LLM may
# veto or shrink a trade, never enlarge it.
# --------------------------------------------------------------------------------------------
LLM_VERDICT_MODES = ("veto", "pass_through")
LLM_UNCERTAINTY_BANDS = ("low", "medium", "high")
LLM_COMMITTEE_ALL_ROLES = ("researcher", "risk_critic", "execution_critic", "policy_judge")
LLM_ROLLOUT_STAGES = (
    "stage0",
    "stage1",
    "stage2",
    "stage3",
    "stage0_baseline",
    "stage1_shadow_pilot",
    "stage2_paper_advisory",
    "stage3_controlled_live",
)
LLM_ENABLED = env.bool("LLM_ENABLED", default=False)
LLM_PROVIDER = env.choice(
    "LLM_PROVIDER",
    choices=("openai", "jangar", "self_hosted"),
    default="jangar" if JANGAR_BASE_URL else "openai",
)
LLM_MODEL = env.str("LLM_MODEL", default="gpt-5.3-codex-spark")
OPENAI_API_KEY = env.secret("OPENAI_API_KEY")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="https://api.openai.com/v1").rstrip("/")
# an OpenAI-compatible server: the fallback when the primary provider fails, or the primary
# itself with LLM_PROVIDER=self_hosted
LLM_SELF_HOSTED_BASE_URL = env.str("LLM_SELF_HOSTED_BASE_URL").rstrip("/")
LLM_SELF_HOSTED_API_KEY = env.secret("LLM_SELF_HOSTED_API_KEY", default="local")
LLM_SELF_HOSTED_MODEL = env.str("LLM_SELF_HOSTED_MODEL", default=LLM_MODEL)
LLM_PROMPT_VERSION = env.str("LLM_PROMPT_VERSION", default="v1")
# greedy decoding and a fixed seed by default: the same snapshot asks the same question twice
LLM_TEMPERATURE = env.float("LLM_TEMPERATURE", default=0.0, min_value=0.0, max_value=2.0)
LLM_SEED = env.int("LLM_SEED", default=0, min_value=0)
LLM_MAX_TOKENS = env.int("LLM_MAX_TOKENS", default=300, min_value=16, max_value=32000)
LLM_TOKEN_BUDGET_MAX = env.int("LLM_TOKEN_BUDGET_MAX", default=1200, min_value=16)
LLM_TIMEOUT_SECONDS = env.float("LLM_TIMEOUT_SECONDS", default=20.0, min_value=0.1, max_value=300)
# how long a decision waits in `pending_review` before the fail mode decides for it
LLM_REVIEW_DEADLINE_SECONDS = env.int(
    "LLM_REVIEW_DEADLINE_SECONDS", default=30, min_value=1, max_value=300
)
LLM_FAIL_MODE = env.choice("LLM_FAIL_MODE", choices=LLM_VERDICT_MODES, default="veto")
LLM_FAIL_MODE_ENFORCEMENT = env.choice(
    "LLM_FAIL_MODE_ENFORCEMENT", choices=("strict_veto", "configured"), default="strict_veto"
)
if LLM_FAIL_MODE_ENFORCEMENT == "strict_veto" and LLM_FAIL_MODE != "veto":
    env.problem(
        f"LLM_FAIL_MODE={LLM_FAIL_MODE!r} needs LLM_FAIL_MODE_ENFORCEMENT=configured "
        "(strict_veto allows only veto)"
    )
LLM_FAIL_OPEN_LIVE_APPROVED = env.bool("LLM_FAIL_OPEN_LIVE_APPROVED", default=False)
LLM_ABSTAIN_FAIL_MODE = env.choice(
    "LLM_ABSTAIN_FAIL_MODE", choices=LLM_VERDICT_MODES, default="pass_through"
)
LLM_ESCALATE_FAIL_MODE = env.choice(
    "LLM_ESCALATE_FAIL_MODE", choices=LLM_VERDICT_MODES, default="veto"
)
LLM_QUALITY_FAIL_MODE = env.choice(
    "LLM_QUALITY_FAIL_MODE", choices=LLM_VERDICT_MODES, default="veto"
)
LLM_MIN_CONFIDENCE = env.float("LLM_MIN_CONFIDENCE", default=0.5, min_value=0.0, max_value=1.0)
LLM_MIN_CALIBRATED_TOP_PROBABILITY = env.float(
    "LLM_MIN_CALIBRATED_TOP_PROBABILITY", default=0.45, min_value=0.0, max_value=1.0
)
LLM_MIN_PROBABILITY_MARGIN = env.float(
    "LLM_MIN_PROBABILITY_MARGIN", default=0.05, min_value=0.0, max_value=1.0
)
LLM_MAX_UNCERTAINTY = env.float("LLM_MAX_UNCERTAINTY", default=0.6, min_value=0.0, max_value=1.0)
LLM_MAX_UNCERTAINTY_BAND = env.choice(
    "LLM_MAX_UNCERTAINTY_BAND", choices=LLM_UNCERTAINTY_BANDS, default="medium"
)
LLM_MIN_CALIBRATION_QUALITY_SCORE = env.float(
    "LLM_MIN_CALIBRATION_QUALITY_SCORE", default=0.5, min_value=0.0, max_value=1.0
)
LLM_ADJUSTMENT_ALLOWED = env.bool("LLM_ADJUSTMENT_ALLOWED", default=False)
LLM_ADJUSTMENT_APPROVED = env.bool("LLM_ADJUSTMENT_APPROVED", default=False)
LLM_MIN_QTY_MULTIPLIER = env.decimal(
    "LLM_MIN_QTY_MULTIPLIER", default=Decimal("0.5"), min_value=Decimal("0.01")
) or Decimal("0.5")
LLM_MAX_QTY_MULTIPLIER = env.decimal(
    "LLM_MAX_QTY_MULTIPLIER", default=Decimal("1.25"), min_value=Decimal("0.01")
) or Decimal("1.25")
if LLM_MIN_QTY_MULTIPLIER > LLM_MAX_QTY_MULTIPLIER:
    env.problem(
        f"LLM_MIN_QTY_MULTIPLIER={LLM_MIN_QTY_MULTIPLIER} must be <= "
        f"LLM_MAX_QTY_MULTIPLIER={LLM_MAX_QTY_MULTIPLIER}"
    )
if LLM_MIN_QTY_MULTIPLIER > 1:
    env.problem(
        f"LLM_MIN_QTY_MULTIPLIER={LLM_MIN_QTY_MULTIPLIER} must be <= 1 "
        "(a review may shrink a trade, never enlarge it)"
    )
# the band (basis points of the signal price) a price the reviewer states must lie in
# (trading/llm/evidence.py)
# (never None with a default; `or Decimal(0)` keeps a configured 0 at 0 for the check below)
LLM_EVIDENCE_PRICE_BAND_BPS = env.decimal(
    "LLM_EVIDENCE_PRICE_BAND_BPS", default=Decimal(100)
) or Decimal(0)
if not 0 < LLM_EVIDENCE_PRICE_BAND_BPS <= 5000:
    env.problem(
        f"LLM_EVIDENCE_PRICE_BAND_BPS={LLM_EVIDENCE_PRICE_BAND_BPS} must be > 0 and <= 5000"
    )
LLM_SHADOW_MODE = env.bool("LLM_SHADOW_MODE", default=False)
LLM_ROLLOUT_STAGE = env.choice("LLM_ROLLOUT_STAGE", choices=LLM_ROLLOUT_STAGES, default="stage3")
LLM_RECENT_DECISIONS = env.int("LLM_RECENT_DECISIONS", default=5, min_value=0, max_value=50)
LLM_CIRCUIT_MAX_ERRORS = env.int("LLM_CIRCUIT_MAX_ERRORS", default=3, min_value=1, max_value=1000)
LLM_CIRCUIT_WINDOW_SECONDS = env.int("LLM_CIRCUIT_WINDOW_SECONDS", default=300, min_value=1)
LLM_CIRCUIT_COOLDOWN_SECONDS = env.int("LLM_CIRCUIT_COOLDOWN_SECONDS", default=600, min_value=1)
LLM_ALLOWED_PROMPT_VERSIONS = env.csv("LLM_ALLOWED_PROMPT_VERSIONS")
LLM_ALLOWED_MODELS = env.csv("LLM_ALLOWED_MODELS")
# model-risk governance evidence: stage2/stage3 enforce only when all four are set
LLM_EVALUATION_REPORT = env.str("LLM_EVALUATION_REPORT")
LLM_EFFECTIVE_CHALLENGE_ID = env.str("LLM_EFFECTIVE_CHALLENGE_ID")
LLM_SHADOW_COMPLETED_AT = env.str("LLM_SHADOW_COMPLETED_AT")
LLM_MODEL_VERSION_LOCK = env.str("LLM_MODEL_VERSION_LOCK")
if LLM_SHADOW_COMPLETED_AT:
    from datetime import datetime as _datetime

    try:
        _datetime.fromisoformat(LLM_SHADOW_COMPLETED_AT.replace("Z", "+00:00"))
    except ValueError:
        env.problem(
            f"LLM_SHADOW_COMPLETED_AT={LLM_SHADOW_COMPLETED_AT!r} is not an ISO 8601 timestamp"
        )
LLM_COMMITTEE_ROLES = env.csv("LLM_COMMITTEE_ROLES", default=LLM_COMMITTEE_ALL_ROLES)
LLM_COMMITTEE_MANDATORY_ROLES = env.csv(
    "LLM_COMMITTEE_MANDATORY_ROLES", default=("risk_critic", "execution_critic", "policy_judge")
)
for _name, _roles in (
    ("LLM_COMMITTEE_ROLES", LLM_COMMITTEE_ROLES),
    ("LLM_COMMITTEE_MANDATORY_ROLES", LLM_COMMITTEE_MANDATORY_ROLES),
):
    _unknown = sorted(set(_roles) - set(LLM_COMMITTEE_ALL_ROLES))
    if _unknown:
        env.problem(
            f"{_name} has unknown roles {', '.join(_unknown)} "
            f"(allowed: {', '.join(LLM_COMMITTEE_ALL_ROLES)})"
        )
if set(LLM_COMMITTEE_MANDATORY_ROLES) - set(LLM_COMMITTEE_ROLES):
    env.problem("LLM_COMMITTEE_MANDATORY_ROLES must be a subset of LLM_COMMITTEE_ROLES")
# the legacy review asks one call per role in LLM_COMMITTEE_ROLES (trading/llm/committee.py);
# a Flipt flag (`torghut_llm_committee_enabled`) can switch it at run time
LLM_COMMITTEE_ENABLED = env.bool("LLM_COMMITTEE_ENABLED", default=True)
# what a role that gave no usable answer (provider or schema error) counts as
LLM_COMMITTEE_FAIL_CLOSED_VERDICT = env.choice(
    "LLM_COMMITTEE_FAIL_CLOSED_VERDICT", choices=("veto", "abstain"), default="veto"
)
if LLM_MAX_TOKENS > LLM_TOKEN_BUDGET_MAX:
    env.problem(
        f"LLM_MAX_TOKENS={LLM_MAX_TOKENS} exceeds LLM_TOKEN_BUDGET_MAX={LLM_TOKEN_BUDGET_MAX}"
    )
if LLM_ENABLED:
    if LLM_PROVIDER == "jangar" and not JANGAR_BASE_URL:
        env.problem("LLM_PROVIDER=jangar requires JANGAR_BASE_URL")
    if LLM_PROVIDER == "openai" and not OPENAI_API_KEY:
        env.problem("LLM_PROVIDER=openai requires OPENAI_API_KEY (or OPENAI_API_KEY_FILE)")
    if LLM_PROVIDER == "self_hosted" and not LLM_SELF_HOSTED_BASE_URL:
        env.problem("LLM_PROVIDER=self_hosted requires LLM_SELF_HOSTED_BASE_URL")

LLM_DSPY_RUNTIME_MODE = env.choice(
    "LLM_DSPY_RUNTIME_MODE", choices=("disabled", "shadow", "active"), default="disabled"
)
LLM_DSPY_ARTIFACT_HASH = env.str("LLM_DSPY_ARTIFACT_HASH").lower()
if LLM_DSPY_RUNTIME_MODE != "disabled":
    # that the hash names a stored, promoted artifact is checked against the database by the
    # `trading.E001` system check (manage.py migrate / check --database default)
    if not LLM_DSPY_ARTIFACT_HASH:
        env.problem(
            f"LLM_DSPY_RUNTIME_MODE={LLM_DSPY_RUNTIME_MODE} requires LLM_DSPY_ARTIFACT_HASH"
        )
    elif len(LLM_DSPY_ARTIFACT_HASH) != 64 or any(
        c not in "0123456789abcdef" for c in LLM_DSPY_ARTIFACT_HASH
    ):
        env.problem(
            f"LLM_DSPY_ARTIFACT_HASH={LLM_DSPY_ARTIFACT_HASH!r} is not a sha256 (64 hex digits)"
        )
LLM_DSPY_PROGRAM_NAME = env.str("LLM_DSPY_PROGRAM_NAME", default="trade-review-committee-v1")
LLM_DSPY_SIGNATURE_VERSION = env.str("LLM_DSPY_SIGNATURE_VERSION", default="v1")
LLM_DSPY_TIMEOUT_SECONDS = env.float(
    "LLM_DSPY_TIMEOUT_SECONDS", default=8.0, min_value=0.1, max_value=300
)
LLM_DSPY_COMPILE_METRICS_POLICY_REF = env.str(
    "LLM_DSPY_COMPILE_METRICS_POLICY_REF", default="config/trading/llm/dspy-metrics.yaml"
)
LLM_DSPY_SECRET_BINDING_REF = env.str(
    "LLM_DSPY_SECRET_BINDING_REF", default="codex-whitepaper-github-token"
)
LLM_DSPY_AGENTRUN_TTL_SECONDS = env.int("LLM_DSPY_AGENTRUN_TTL_SECONDS", default=14400, min_value=0)

# --------------------------------------------------------------------------------------------
# Jangar market context (trading/market_context.py), fetched by the review task before the model
# call (never by the trade cycle). An unusable context (missing, stale, low quality, fetch error)
# blocks the call when the context is required or the fail mode is fail_closed (the posture's
# fail outcome applies: a veto or the deterministic order); with shadow_only it is recorded and
# the review goes on without it. TRADING_MARKET_CONTEXT_REQUIRED is also a Flipt flag.
# --------------------------------------------------------------------------------------------
TRADING_MARKET_CONTEXT_URL = env.str("TRADING_MARKET_CONTEXT_URL").strip()
if TRADING_MARKET_CONTEXT_URL:
    from urllib.parse import urlsplit as _urlsplit

    _mc = _urlsplit(TRADING_MARKET_CONTEXT_URL)
    if _mc.scheme not in ("http", "https") or not _mc.hostname or _mc.username or _mc.fragment:
        env.problem(
            f"TRADING_MARKET_CONTEXT_URL={TRADING_MARKET_CONTEXT_URL!r} is not an http(s) URL "
            "with a host (no user-info, no fragment)"
        )
TRADING_MARKET_CONTEXT_TIMEOUT_SECONDS = env.float(
    "TRADING_MARKET_CONTEXT_TIMEOUT_SECONDS", default=3.0, min_value=0.1, max_value=30
)
TRADING_MARKET_CONTEXT_REQUIRED = env.bool("TRADING_MARKET_CONTEXT_REQUIRED", default=False)
TRADING_MARKET_CONTEXT_FAIL_MODE = env.choice(
    "TRADING_MARKET_CONTEXT_FAIL_MODE",
    choices=("shadow_only", "fail_closed"),
    default="shadow_only",
)
TRADING_MARKET_CONTEXT_MIN_QUALITY = env.float(
    "TRADING_MARKET_CONTEXT_MIN_QUALITY", default=0.4, min_value=0.0, max_value=1.0
)
TRADING_MARKET_CONTEXT_MAX_STALENESS_SECONDS = env.int(
    "TRADING_MARKET_CONTEXT_MAX_STALENESS_SECONDS", default=300, min_value=1, max_value=86400
)
if TRADING_MARKET_CONTEXT_REQUIRED and not TRADING_MARKET_CONTEXT_URL:
    env.problem("TRADING_MARKET_CONTEXT_REQUIRED=true requires TRADING_MARKET_CONTEXT_URL")

# --------------------------------------------------------------------------------------------
# Spend budgets (trading/services/llm_budget.py): before a call its estimated cost is reserved in
# the database under every cap that is set; unset = no cap for that scope. Over a cap the review
# is skipped (`llm_budget_exceeded:<scope>`) and the fail mode decides, as for an open circuit.
# --------------------------------------------------------------------------------------------
LLM_BUDGET_USD_PER_REVIEW = env.decimal("LLM_BUDGET_USD_PER_REVIEW", min_value=Decimal(0))
LLM_BUDGET_USD_PER_DAY = env.decimal("LLM_BUDGET_USD_PER_DAY", min_value=Decimal(0))
LLM_BUDGET_USD_PER_STRATEGY_PER_DAY = env.decimal(
    "LLM_BUDGET_USD_PER_STRATEGY_PER_DAY", min_value=Decimal(0)
)
# model id -> {"input_per_1k": USD, "output_per_1k": USD}
LLM_MODEL_PRICES: dict[str, dict[str, Decimal]] = {}
_prices_raw = env.json("LLM_MODEL_PRICES_JSON", default={})
if not isinstance(_prices_raw, dict):
    env.problem("LLM_MODEL_PRICES_JSON must be a JSON object of model -> prices")
    _prices_raw = {}
for _model, _price in _prices_raw.items():
    if not isinstance(_price, dict) or set(_price) != {"input_per_1k", "output_per_1k"}:
        env.problem(
            f"LLM_MODEL_PRICES_JSON[{_model!r}] must be an object with exactly "
            "input_per_1k and output_per_1k"
        )
        continue
    _parsed: dict[str, Decimal] = {}
    for _key, _value in _price.items():
        try:
            _number = Decimal(str(_value)) if not isinstance(_value, bool) else None
        except ArithmeticError:
            _number = None
        if _number is None or not _number.is_finite() or _number < 0:
            env.problem(
                f"LLM_MODEL_PRICES_JSON[{_model!r}][{_key!r}]={_value!r} "
                "is not a decimal number >= 0"
            )
            continue
        _parsed[_key] = _number
    if len(_parsed) == 2:
        LLM_MODEL_PRICES[_model] = _parsed
if (
    LLM_BUDGET_USD_PER_REVIEW is not None
    or LLM_BUDGET_USD_PER_DAY is not None
    or (LLM_BUDGET_USD_PER_STRATEGY_PER_DAY is not None)
):
    # a budget without a price for a model the review may call could not be enforced
    _priced = [LLM_MODEL] + ([LLM_SELF_HOSTED_MODEL] if LLM_SELF_HOSTED_BASE_URL else [])
    for _model in sorted(set(_priced) - set(LLM_MODEL_PRICES)):
        env.problem(
            f"LLM_MODEL_PRICES_JSON has no price for model {_model!r} "
            "(a LLM_BUDGET_USD_* cap is set)"
        )

# --------------------------------------------------------------------------------------------
# Stability probes (trading/services/stability.py): this share of completed reviews, chosen by a
# hash of the review id, is asked again once; the flip rate of an artifact's probes above the
# maximum refuses its promotion beyond shadow (trading/services/dspy_lanes/promote.py).
# --------------------------------------------------------------------------------------------
LLM_STABILITY_PROBE_SHARE = env.float(
    "LLM_STABILITY_PROBE_SHARE", default=0.0, min_value=0.0, max_value=1.0
)
LLM_STABILITY_MAX_FLIP_RATE = env.float(
    "LLM_STABILITY_MAX_FLIP_RATE", default=0.05, min_value=0.0, max_value=1.0
)
# model id -> the last day of its training data (ISO date): evaluations and promotions of a DSPy
# program use only decisions after the cutoff of the model that runs it
# (trading/services/dspy_lanes/evaluate.py)
LLM_MODEL_TRAINING_CUTOFFS: dict[str, date] = {}
_cutoffs_raw = env.json("LLM_MODEL_TRAINING_CUTOFFS_JSON", default={})
if not isinstance(_cutoffs_raw, dict):
    env.problem("LLM_MODEL_TRAINING_CUTOFFS_JSON must be a JSON object of model -> ISO date")
    _cutoffs_raw = {}
for _model, _cutoff in _cutoffs_raw.items():
    try:
        LLM_MODEL_TRAINING_CUTOFFS[str(_model)] = date.fromisoformat(str(_cutoff))
    except ValueError:
        env.problem(
            f"LLM_MODEL_TRAINING_CUTOFFS_JSON[{_model!r}]={_cutoff!r} "
            "is not an ISO date (YYYY-MM-DD)"
        )
