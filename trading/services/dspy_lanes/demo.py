"""`manage.py dspy demo`: build-dataset → compile → evaluate → promote, offline, on the bundled
sample data and the demo model (trading/llm/demo_server.py, a deterministic stand-in for a real
model, as the simulated broker stands in for Alpaca).

1. Decisions: the real trade cycle replays the bundled sample signals
   (trading/sample_data/signals-sample.csv, at recorded speed on its own clock) on the lane
   `dspy-demo` with the simulated broker, the LLM review off, running the enabled strategies of
   the sample catalog (config/strategies.sample.yaml) copied as `dspy-demo-<name>` and scoped to
   that lane (plus any enabled strategy scoped to every lane). Rerunning finds the cursor at the
   end of the file and adds nothing.
2. Dataset: those decisions labelled by the bundled bars (trading/sample_data/bars-sample.csv).
3. Compile, evaluate, promote with the demo model under the demo metric policy
   (config/trading/llm/dspy-metrics.demo.yaml: the schema and latency gates; the demo model is a
   rule, so its veto alignment and false-veto rate are measured and printed, not gated;
   `--policy` evaluates under another); the demo model's declared training cutoff is before the
   sample day. The promotion's approver is the `dspy-demo-approver` user (no usable
   password), the target is `shadow`, the token reference `dspy-demo`. Only rows are written:
   no setting changes, so nothing runs the promoted program unless an operator configures it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test.utils import override_settings

from trading.llm.demo_server import DEMO_MODEL, DEMO_MODEL_TRAINING_CUTOFF, DemoModelServer
from trading.models import LLMDspyWorkflowArtifact, Strategy, TradeCursor, TradeDecision
from trading.services.catalog import parse_catalog
from trading.services.cycle import trading_cycle_run
from trading.services.dspy_lanes.compile import dspy_compile
from trading.services.dspy_lanes.dataset import dspy_dataset_build
from trading.services.dspy_lanes.evaluate import dspy_evaluate
from trading.services.dspy_lanes.promote import dspy_promote

DEMO_LANE = "dspy-demo"
DEMO_APPROVER = "dspy-demo-approver"
DEMO_TOKEN_REF = "dspy-demo"  # noqa: S105 - a reference naming the approval, not a secret
DEMO_TARGET = "shadow"
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_data"
SAMPLE_SIGNALS = SAMPLE_DIR / "signals-sample.csv"
SAMPLE_BARS = SAMPLE_DIR / "bars-sample.csv"
SAMPLE_CATALOG = Path(__file__).resolve().parents[3] / "config" / "strategies.sample.yaml"
DEMO_POLICY = "config/trading/llm/dspy-metrics.demo.yaml"


@dataclass(frozen=True)
class DemoResult:
    model_url: str
    model_calls: int
    decisions: int
    dataset: LLMDspyWorkflowArtifact
    compiled: LLMDspyWorkflowArtifact
    evaluation: LLMDspyWorkflowArtifact
    promotion: LLMDspyWorkflowArtifact


def _demo_strategies() -> list[str]:
    """The sample catalog's enabled strategies as `dspy-demo-<name>`, scoped to the demo lane."""
    names = []
    for entry in parse_catalog(SAMPLE_CATALOG.read_text(encoding="utf-8")):
        if not entry["enabled"]:
            continue
        name = f"{DEMO_LANE}-{entry['name']}"
        Strategy.objects.update_or_create(
            name=name,
            defaults={
                **entry,
                "name": name,
                "description": f"manage.py dspy demo: {entry['description']}",
                "account_labels": [DEMO_LANE],
            },
        )
        names.append(name)
    return names


def _sample_span() -> tuple[datetime, datetime]:
    with SAMPLE_SIGNALS.open(encoding="utf-8") as handle:
        times = [row["event_ts"] for row in csv.DictReader(handle)]
    first, last = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (times[0], times[-1]))
    return first, last


def _demo_replay() -> int:
    """Run the trade cycle over the sample signals on the demo lane; the lane's decisions."""
    start, end = _sample_span()
    lane = {
        "label": DEMO_LANE,
        "mode": "paper",
        "broker": "simulated",
        "enabled": True,
        "api_key": "",
        "secret_key": "",
        "base_url": "",
    }
    with override_settings(
        TRADING_ENABLED=True,
        TRADING_KILL_SWITCH_ENABLED=False,
        TRADING_FEATURE_FLAGS_ENABLED=False,
        TRADING_SIGNAL_SOURCE="replay",
        TRADING_SIGNAL_REPLAY_PATH=str(SAMPLE_SIGNALS),
        TRADING_SIGNAL_REPLAY_SPEED=1.0,
        TRADING_SIGNAL_REPLAY_LOOP=False,
        TRADING_STRATEGY_CONFIG_PATH="",
        TRADING_LANES=[lane],
        LLM_ENABLED=False,
        # the cycles run on the sample's clock, milliseconds of wall time apart: a wall-clock
        # cooldown or account-snapshot age would decide by machine speed, so there is no
        # cooldown and every cycle reads a fresh snapshot (the same decisions on every run)
        TRADING_COOLDOWN_SECONDS=0,
        TRADING_RECONCILE_MS=0,
    ):
        cursor, _ = TradeCursor.objects.get_or_create(
            source="replay",
            account_label=DEMO_LANE,
            defaults={"state": {"anchor": start.isoformat()}},
        )
        # a rerun resumes where the cursor stands (nothing to do once it reached the last row)
        done = cursor.cursor_at or start - timedelta(minutes=1)
        minutes = int((end - start).total_seconds() // 60)
        for minute in range(max(int((done - start).total_seconds() // 60), 0), minutes + 1):
            if done >= end:
                break
            now = start + timedelta(minutes=minute, seconds=30)
            trading_cycle_run(account_label=DEMO_LANE, now=now)
    return TradeDecision.objects.filter(account_label=DEMO_LANE).count()


def _demo_approver() -> Any:
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=DEMO_APPROVER)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    user.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="trading", codename="change_llmdspyworkflowartifact"
        )
    )
    return user_model.objects.get(pk=user.pk)  # a fresh permission cache


def dspy_demo(
    *,
    optimizer: str = "bootstrap-fewshot",
    max_demos: int = 16,
    horizon_minutes: int = 30,
    veto_bps: Decimal = Decimal(10),
    seed: int = 0,
    policy_ref: str = DEMO_POLICY,
) -> DemoResult:
    """The whole DSPy loop on the sample data against the demo model, which runs only for the
    duration of this call."""
    _demo_strategies()
    decisions = _demo_replay()
    cutoffs = {**settings.LLM_MODEL_TRAINING_CUTOFFS, DEMO_MODEL: DEMO_MODEL_TRAINING_CUTOFF}
    with (
        DemoModelServer() as server,
        override_settings(
            LLM_PROVIDER="self_hosted",
            LLM_SELF_HOSTED_BASE_URL=server.base_url,
            LLM_SELF_HOSTED_MODEL=DEMO_MODEL,
            LLM_SELF_HOSTED_API_KEY="local",
            LLM_MODEL_TRAINING_CUTOFFS=cutoffs,
        ),
    ):
        dataset = dspy_dataset_build(
            account_labels=[DEMO_LANE],
            horizon_minutes=horizon_minutes,
            veto_bps=veto_bps,
            prices_path=SAMPLE_BARS,
        )
        compiled = dspy_compile(
            dataset_hash=dataset.dataset_hash, optimizer=optimizer, seed=seed, max_demos=max_demos
        )
        evaluation = dspy_evaluate(artifact_hash=compiled.artifact_hash, policy_ref=policy_ref)
        promotion = dspy_promote(
            artifact_hash=compiled.artifact_hash,
            eval_hash=evaluation.eval_hash,
            target=DEMO_TARGET,
            approver=_demo_approver(),
            approval_token_ref=DEMO_TOKEN_REF,
            policy_ref=policy_ref,
        )
        return DemoResult(
            model_url=server.base_url,
            model_calls=server.completions,
            decisions=decisions,
            dataset=dataset,
            compiled=compiled,
            evaluation=evaluation,
            promotion=promotion,
        )
