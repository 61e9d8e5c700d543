"""``manage.py orchestration_guard``: check a stage transition or decide what a failure leads to.

    manage.py orchestration_guard check-transition --state STATE.json --candidate-id ID \\
        --run-id ID [--from-stage S] --to-stage S [--previous-artifact PATH] \\
        [--previous-gate-passed] [--risk-controls-passed] [--execution-controls-passed] \\
        [--mode gitops|emergency] [--ticket T] [--policy POLICY.yaml]
    manage.py orchestration_guard evaluate-failure --state STATE.json --stage S \\
        --failure-class transient|deterministic|spec|policy --attempt N [--policy POLICY.yaml]

Prints one JSON object (the decision, keys sorted) on stdout. Exit codes:

- 0: transition allowed / failure retried;
- 2: transition denied / failure paused for review or failed (the JSON says which and why);
- 1: the question could not be answered (nothing on stdout, ``CommandError: ...`` on stderr):
  unreadable or invalid policy or state file, unknown stage, bad usage (missing or malformed
  option). Usage errors exit 1 here even from the shell, unlike argparse's usual 2, so that 2
  always means "a decision said stop".

Through ``call_command`` a deny raises ``SystemExit(2)`` after writing stdout and an input error
raises ``CommandError`` (``returncode == 1``). Code that needs the decision as a value uses
``autonomy.guard`` directly. The rules themselves are documented in ``autonomy/guard/__init__.py``.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser

from autonomy.guard import (
    DEFAULT_POLICY_PATH,
    FAILURE_CLASSES,
    MODES,
    GuardInputError,
    TransitionRequest,
    check_transition,
    evaluate_failure,
    load_policy,
    load_state,
)

EXIT_PROCEED = 0
EXIT_INPUT_ERROR = 1
EXIT_STOP = 2


class _InputErrorParser(CommandParser):
    """Usage errors become ``CommandError`` (exit 1) also from the shell; see the module doc."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"Error: {message}", returncode=EXIT_INPUT_ERROR)


class Command(BaseCommand):
    help = (
        "Check an orchestration stage transition or evaluate a stage failure against the "
        "orchestration policy. Prints one JSON decision; exit 0 proceed, 2 stop, 1 bad input."
    )
    requires_system_checks: list[str] = []  # pure policy evaluation: no models, no database

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Top-level usage errors (no subcommand) raise CommandError too, caught in run_from_argv.
        parser.called_from_command_line = False
        return parser

    def run_from_argv(self, argv: list[str]) -> None:
        try:
            super().run_from_argv(argv)
        except CommandError as exc:  # raised while parsing argv, before BaseCommand's own handler
            if "--traceback" in argv:
                raise
            self.stderr.write(f"CommandError: {exc}")
            sys.exit(exc.returncode)

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(
            dest="command", required=True, parser_class=_InputErrorParser
        )

        transition = commands.add_parser(
            "check-transition", help="Allow or deny a stage transition for a candidate."
        )
        transition.add_argument("--state", required=True, help="candidate state JSON file")
        transition.add_argument("--candidate-id", required=True)
        transition.add_argument("--run-id", required=True)
        transition.add_argument(
            "--from-stage", help="source stage; defaults to the state's activeStage"
        )
        transition.add_argument("--to-stage", required=True)
        transition.add_argument("--previous-artifact", help="path of the previous stage's artifact")
        transition.add_argument("--previous-gate-passed", action="store_true")
        transition.add_argument("--risk-controls-passed", action="store_true")
        transition.add_argument("--execution-controls-passed", action="store_true")
        transition.add_argument(
            "--mode",
            choices=MODES,
            help="how a mutable stage is entered; required for mutable target stages",
        )
        transition.add_argument(
            "--ticket",
            "--emergency-ticket",
            dest="ticket",
            help="change ticket for --mode emergency",
        )
        self._add_policy_argument(transition)

        failure = commands.add_parser(
            "evaluate-failure", help="Decide retry / pause_for_review / fail after a stage failure."
        )
        failure.add_argument("--state", required=True, help="candidate state JSON file")
        failure.add_argument("--stage", required=True)
        failure.add_argument("--failure-class", required=True, choices=FAILURE_CLASSES)
        failure.add_argument("--attempt", required=True, type=int, help="1-based attempt number")
        self._add_policy_argument(failure)

    @staticmethod
    def _add_policy_argument(parser: CommandParser) -> None:
        parser.add_argument(
            "--policy",
            default=str(DEFAULT_POLICY_PATH),
            help="orchestration policy YAML (default: the shipped policy)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            policy = load_policy(options["policy"])
            state = load_state(options["state"])
            if options["command"] == "check-transition":
                decision = check_transition(
                    policy,
                    state,
                    TransitionRequest(
                        candidate_id=options["candidate_id"],
                        run_id=options["run_id"],
                        from_stage=options["from_stage"],
                        to_stage=options["to_stage"],
                        previous_artifact=options["previous_artifact"],
                        previous_gate_passed=options["previous_gate_passed"],
                        risk_controls_passed=options["risk_controls_passed"],
                        execution_controls_passed=options["execution_controls_passed"],
                        mode=options["mode"],
                        ticket=options["ticket"],
                    ),
                )
                payload, proceed = decision.as_json(), decision.allowed
            else:
                outcome = evaluate_failure(
                    policy,
                    state,
                    stage=options["stage"],
                    failure_class=options["failure_class"],
                    attempt=options["attempt"],
                )
                payload, proceed = outcome.as_json(), outcome.retry
        except GuardInputError as exc:
            raise CommandError(str(exc), returncode=EXIT_INPUT_ERROR) from exc
        self.stdout.write(json.dumps(payload, sort_keys=True))
        if not proceed:
            self.stdout.flush()
            raise SystemExit(EXIT_STOP)
