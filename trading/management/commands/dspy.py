"""``manage.py dspy``: the DSPy review program's lanes.

    manage.py dspy build-dataset [--lane LABEL ...] [--since ISO] [--until ISO]
        [--horizon-minutes 30] [--veto-bps 10] [--limit 5000] [--prices BARS.csv]
    manage.py dspy compile --dataset-hash H [--optimizer bootstrap-fewshot|labeled-fewshot]
        [--seed 0] [--max-demos 4]
    manage.py dspy evaluate --artifact-hash H [--split eval|train|all] [--policy PATH]
    manage.py dspy promote --artifact-hash H --eval-hash E --target shadow --approved-by USER
        --approval-token-ref REF
    manage.py dspy demo [--optimizer ...] [--max-demos 16] [--seed 0]
    manage.py dspy submit-agentrun --lane compile --idempotency-key K --repository R --base B
        --head H --artifact-path P [--param key=value ...]

The LM of compile and evaluate is the configured provider (LLM_PROVIDER, LLM_MODEL,
LLM_SELF_HOSTED_*): point LLM_PROVIDER=self_hosted at a local OpenAI-compatible server to run
the lanes offline. Each prints one JSON object (the stored row's hashes and keys). Exit codes: 0
done; 2 the evaluation did not pass the metric policy; 1 refused or bad input.
"""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading.llm.dspy.agentrun import IMPLEMENTATION_SPEC_BY_LANE
from trading.models import LLMDspyWorkflowArtifact
from trading.services import dspy_lanes

FIELDS = (
    "run_key",
    "lane",
    "status",
    "program_name",
    "signature_version",
    "optimizer",
    "dataset_hash",
    "compiled_prompt_hash",
    "reproducibility_hash",
    "artifact_hash",
    "eval_hash",
    "promotion_hash",
    "gate_compatibility",
    "promotion_recommendation",
    "promotion_target",
    "object_key",
    "artifact_uri",
    "agentrun_name",
    "metric_bundle",
)


def _when(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"{value} has no time zone")
    return parsed


def _param(value: str) -> tuple[str, str]:
    key, sep, text = value.partition("=")
    if not sep:
        raise ValueError(f"{value!r} is not key=value")
    return key, text


class Command(BaseCommand):
    help = "DSPy review program lanes: build-dataset, compile, evaluate, promote, submit-agentrun."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        build = sub.add_parser("build-dataset", help="labelled examples from stored decisions")
        build.add_argument("--lane", action="append", dest="lanes", default=[])
        build.add_argument("--since", type=_when)
        build.add_argument("--until", type=_when)
        build.add_argument("--horizon-minutes", type=int, default=30)
        build.add_argument("--veto-bps", type=Decimal, default=Decimal(10))
        build.add_argument("--limit", type=int, default=5000)
        build.add_argument(
            "--prices", type=Path, help="label from this bars CSV (timestamp,symbol,close)"
        )
        comp = sub.add_parser("compile", help="compile the program on a dataset's training split")
        comp.add_argument("--dataset-hash", required=True)
        comp.add_argument("--optimizer", choices=dspy_lanes.OPTIMIZERS, default="bootstrap-fewshot")
        comp.add_argument("--seed", type=int, default=0)
        comp.add_argument("--max-demos", type=int, default=4)
        ev = sub.add_parser("evaluate", help="evaluate a compiled artifact against the policy")
        ev.add_argument("--artifact-hash", required=True)
        ev.add_argument("--split", choices=("eval", "train", "all"), default="eval")
        ev.add_argument(
            "--policy", help="metric policy (default LLM_DSPY_COMPILE_METRICS_POLICY_REF)"
        )
        promo = sub.add_parser("promote", help="record an approved promotion")
        promo.add_argument("--artifact-hash", required=True)
        promo.add_argument("--eval-hash", required=True)
        promo.add_argument("--target", required=True)
        promo.add_argument("--approved-by", required=True, help="username of the approver")
        promo.add_argument("--approval-token-ref", default="")
        promo.add_argument("--policy")
        demo = sub.add_parser(
            "demo", help="the whole loop offline: sample data, the demo model (a stand-in)"
        )
        demo.add_argument("--optimizer", choices=dspy_lanes.OPTIMIZERS, default="bootstrap-fewshot")
        demo.add_argument("--max-demos", type=int, default=16)
        demo.add_argument("--seed", type=int, default=0)
        demo.add_argument("--policy", help="metric policy (default the demo's)")
        run = sub.add_parser("submit-agentrun", help="submit a lane as an AgentRun on Jangar")
        run.add_argument("--lane", required=True, choices=sorted(IMPLEMENTATION_SPEC_BY_LANE))
        run.add_argument("--idempotency-key", required=True)
        run.add_argument("--repository", required=True)
        run.add_argument("--base", required=True)
        run.add_argument("--head", required=True)
        run.add_argument("--artifact-path", required=True)
        run.add_argument("--param", action="append", type=_param, default=[])
        run.add_argument("--policy")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "demo":
            self._demo(options)
            return
        try:
            # DSPy's optimizers print progress: keep stdout for the one JSON answer
            with contextlib.redirect_stdout(sys.stderr):
                row = self._run(action, options)
        except dspy_lanes.DspyLaneError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        answer = {f: getattr(row, f) for f in FIELDS}
        if action == "build-dataset":
            answer["warnings"] = list(row.metadata.get("warnings", []))
            for warning in answer["warnings"]:
                self.stderr.write(f"warning: {warning}")
        self.stdout.write(json.dumps(answer, sort_keys=True, default=str))
        if action == "evaluate" and row.gate_compatibility != "pass":
            sys.exit(2)

    def _demo(self, options: dict[str, Any]) -> None:
        from trading.llm.demo_server import DEMO_MODEL
        from trading.services.dspy_lanes.demo import DEMO_POLICY, dspy_demo

        self.stderr.write(
            f"dspy demo: the model is {DEMO_MODEL}, the demo stand-in "
            "(trading/llm/demo_server.py): a deterministic rule on 127.0.0.1, not a language model"
        )
        try:
            with contextlib.redirect_stdout(sys.stderr):
                result = dspy_demo(
                    optimizer=options["optimizer"],
                    max_demos=options["max_demos"],
                    seed=options["seed"],
                    **({"policy_ref": options["policy"]} if options["policy"] else {}),
                )
        except dspy_lanes.DspyLaneError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        evaluation, promotion = result.evaluation, result.promotion
        answer = {
            "model": f"{DEMO_MODEL} (demo stand-in, trading/llm/demo_server.py)",
            "model_url": result.model_url,
            "model_calls": result.model_calls,
            "decisions": result.decisions,
            "examples": result.dataset.metric_bundle,
            "dataset_hash": result.dataset.dataset_hash,
            "optimizer": result.compiled.optimizer,
            "artifact_hash": result.compiled.artifact_hash,
            "compiled_prompt_hash": result.compiled.compiled_prompt_hash,
            "reproducibility_hash": result.compiled.reproducibility_hash,
            "eval_hash": evaluation.eval_hash,
            "gate_compatibility": evaluation.gate_compatibility,
            "gates": {k: g["pass"] for k, g in evaluation.metric_bundle["gates"].items()},
            "rates": {
                k: evaluation.metric_bundle[k]
                for k in ("vetoAlignmentRate", "baselineVetoAlignmentRate", "falseVetoRate")
            },
            "policy": options["policy"] or DEMO_POLICY,
            "window": evaluation.metric_bundle.get("window"),
            "promotion_hash": promotion.promotion_hash,
            "promotion_target": promotion.promotion_target,
            "promoted": promotion.status == "promoted",
        }
        self.stdout.write(json.dumps(answer, sort_keys=True, default=str))

    def _run(self, action: str, options: dict[str, Any]) -> LLMDspyWorkflowArtifact:
        if action == "build-dataset":
            return dspy_lanes.dspy_dataset_build(
                account_labels=options["lanes"] or None,
                since=options["since"],
                until=options["until"],
                horizon_minutes=options["horizon_minutes"],
                veto_bps=options["veto_bps"],
                limit=options["limit"],
                prices_path=options["prices"],
            )
        if action == "compile":
            return dspy_lanes.dspy_compile(
                dataset_hash=options["dataset_hash"],
                optimizer=options["optimizer"],
                seed=options["seed"],
                max_demos=options["max_demos"],
            )
        if action == "evaluate":
            return dspy_lanes.dspy_evaluate(
                artifact_hash=options["artifact_hash"],
                split=options["split"],
                policy_ref=options["policy"],
            )
        if action == "promote":
            user = get_user_model().objects.filter(username=options["approved_by"]).first()
            if user is None:
                raise CommandError(f"approver_unknown: no user {options['approved_by']!r}")
            return dspy_lanes.dspy_promote(
                artifact_hash=options["artifact_hash"],
                eval_hash=options["eval_hash"],
                target=options["target"],
                approver=user,
                approval_token_ref=options["approval_token_ref"],
                policy_ref=options["policy"],
            )
        return dspy_lanes.dspy_agentrun_submit(
            lane=options["lane"],
            idempotency_key=options["idempotency_key"],
            repository=options["repository"],
            base=options["base"],
            head=options["head"],
            artifact_path=options["artifact_path"],
            parameter_overrides=dict(options["param"]),
            policy_ref=options["policy"],
        )
