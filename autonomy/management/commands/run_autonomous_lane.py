"""``manage.py run_autonomous_lane``: the seed's lane script, with the same flags and outputs.

    manage.py run_autonomous_lane --signals tests/fixtures/walkforward_signals.json \\
        --strategy-config config/autonomous-strategy-sample.yaml \\
        --gate-policy config/autonomous-gate-policy.json \\
        --output-dir artifacts/autonomy-lane [--promotion-target shadow|paper|live] \\
        [--approval-token TOKEN] [--folds N] [--no-progress]

Writes the artifacts of docs/compatibility.md#autonomous-lane and their `manifest.json` under the
output dir and to object storage, write-once, records the run in the research ledger, and prints one
JSON summary. The run id covers every input that changes an artifact (`autonomy.run_inputs`); the
same inputs again replay the stored run (`recorded: false`). Exit 0 when the run completed (whatever
the gates said: the summary and `gates/gate-evaluation.json` say it), 1 on bad input (unreadable or
invalid signals, strategy config or gate policy) or when an artifact would change (an output dir
holding another run, a stored object that no longer matches its manifest). It never promotes:
promotion is a human action in the admin or the API.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from autonomy.engine.progress import no_progress, terminal_progress
from autonomy.lane_inputs import LaneInputError
from autonomy.policy import GatePolicyError, load_gate_policy
from autonomy.services.artifacts import ArtifactConflictError
from autonomy.services.research_lane import lane_execute, lane_skip, policy_inputs
from autonomy.services.schedule import approval_token_matches
from trading.signals.replay import read_signal_rows


class Command(BaseCommand):
    help = "Run the autonomous research lane over a signal file and record it in the ledger."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--signals", required=True, type=Path)
        parser.add_argument("--strategy-config", required=True, type=Path)
        parser.add_argument("--gate-policy", required=True, type=Path)
        parser.add_argument("--output-dir", required=True, type=Path)
        parser.add_argument(
            "--promotion-target", choices=("shadow", "paper", "live"), default="paper"
        )
        parser.add_argument(
            "--strategy-configmap",
            type=Path,
            default=None,
            help="accepted for the seed's interface; the patch is always a standalone ConfigMap",
        )
        parser.add_argument("--approval-token", default=None)
        parser.add_argument("--folds", type=int, default=1, help="walk-forward folds (default 1)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        def read(path: Path, what: str) -> bytes:
            try:
                return path.read_bytes()
            except OSError as exc:
                raise CommandError(f"{what} {path}: {exc.strerror}") from exc

        signals_path: Path = options["signals"]
        signals_bytes = read(signals_path, "--signals")
        try:
            rows = read_signal_rows(signals_path)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CommandError(f"--signals {signals_path}: {exc}") from exc
        strategy_bytes = read(options["strategy_config"], "--strategy-config")
        try:
            policy, policy_bytes = load_gate_policy(options["gate_policy"])
        except GatePolicyError as exc:
            raise CommandError(f"--gate-policy: {exc}") from exc
        if options["folds"] < 1:
            raise CommandError("--folds must be at least 1")
        inputs = policy_inputs(
            signal_rows=rows,
            signals_bytes=signals_bytes,
            strategy_config_bytes=strategy_bytes,
            policy=policy,
            policy_bytes=policy_bytes,
            target=options["promotion_target"],
            approval_token_ok=approval_token_matches(options["approval_token"]),
            folds=options["folds"],
        )
        output_dir: Path = options["output_dir"]
        show = not options["no_progress"] and sys.stderr.isatty()
        progress = terminal_progress(sys.stderr) if show else no_progress
        try:
            if not rows:
                result = lane_skip(inputs=inputs, output_dir=output_dir, trigger="cli")
            else:
                result = lane_execute(
                    inputs=inputs, output_dir=output_dir, trigger="cli", progress=progress
                )
        except (LaneInputError, ArtifactConflictError) as exc:
            raise CommandError(str(exc)) from exc
        outcome = result.outcome
        summary = {
            "run_id": outcome.run_id,
            "candidate_id": outcome.candidate_id,
            "status": outcome.status,
            "promotion_target": outcome.promotion_target,
            "recommended_mode": outcome.recommended_mode,
            "recommendation": outcome.recommendation.get("action", "hold"),
            "eligible": outcome.eligible,
            "recorded": result.recorded,
            "output_dir": str(output_dir),
            "artifacts": sorted(outcome.artifacts),
        }
        self.stdout.write(json.dumps(summary, sort_keys=True))
