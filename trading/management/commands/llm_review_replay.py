"""``manage.py llm_review_replay --review-id N``: ask a stored review's question again.

Sends the stored request snapshot with the recorded model, prompt version, temperature, seed and
token limit (or runs the same DSPy artifact) and prints whether the answer is the same (verdict
and answer hash). Writes nothing. Exit 0 same answer, 2 a different answer or an error.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading.models import LLMDecisionReview
from trading.services.reviews import review_replay


class Command(BaseCommand):
    help = "Replay a stored LLM review and compare the answer (exit 0 same, 2 different)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--review-id", type=int, required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = review_replay(review_id=options["review_id"])
        except LLMDecisionReview.DoesNotExist as exc:
            raise CommandError(f"no review {options['review_id']}") from exc
        self.stdout.write(json.dumps(result.as_json(), sort_keys=True))
        if not result.same_answer:
            sys.exit(2)
