"""``manage.py llm_review_replay``: re-evaluate stored reviews from their stored answers.

- ``--review-id N``: check the stored answer against its sha256, parse it with the same schema,
  apply the deterministic policy with the recorded configuration to the recorded deterministic
  order, and compare verdict, effect, reasons, final quantity, order type and limit price with the
  stored row (trading/services/review_replay.py). Exit 0 equal, 2 different or unreplayable.
- ``--all [--since ISO]``: the same for every review (created since ISO), printing
  {replayed, equal, different, unreplayable}. Exit 0 when none differs, 2 otherwise.
- ``--review-id N --ask-again``: ask the model the stored question again instead and compare
  its answer (verdict and answer hash). Exit 0 same answer, 2 a different answer or an error.

Writes nothing.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from trading.models import LLMDecisionReview
from trading.services.review_replay import (
    review_ask_again,
    review_replay_stored,
    reviews_replay_stored,
)


class Command(BaseCommand):
    help = "Re-evaluate stored LLM reviews from their stored answers (exit 0 equal, 2 not)."

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--review-id", type=int)
        which.add_argument("--all", action="store_true")
        parser.add_argument("--since", help="with --all: reviews created at or after (ISO)")
        parser.add_argument(
            "--ask-again", action="store_true", help="with --review-id: ask the model again"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["all"]:
            self._all(options["since"])
            return
        if options["since"]:
            raise CommandError("--since goes with --all")
        try:
            review = LLMDecisionReview.objects.get(pk=options["review_id"])
        except LLMDecisionReview.DoesNotExist as exc:
            raise CommandError(f"no review {options['review_id']}") from exc
        if options["ask_again"]:
            asked = review_ask_again(review_id=review.pk)
            self.stdout.write(json.dumps(asked.as_json(), sort_keys=True))
            if not asked.same_answer:
                sys.exit(2)
            return
        result = review_replay_stored(review)
        self.stdout.write(json.dumps(result.as_json(), sort_keys=True))
        if result.result != "equal":
            sys.exit(2)

    def _all(self, since_text: str | None) -> None:
        since = None
        if since_text:
            since = parse_datetime(since_text)
            if since is None or since.tzinfo is None:
                raise CommandError(f"--since {since_text!r} is not an ISO time with a zone")
        summary = reviews_replay_stored(since=since)
        self.stdout.write(json.dumps(summary.as_json(), sort_keys=True))
        if summary.different:
            sys.exit(2)
