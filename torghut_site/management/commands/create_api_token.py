from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from torghut_site.auth import api_token_issue


class Command(BaseCommand):
    help = "Issue an API token for a user and print it once (only its digest is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="username")
        parser.add_argument("--name", default="cli", help="a label for the token")
        parser.add_argument(
            "--ttl-days",
            type=int,
            default=None,
            help="days until the token expires (0: never); default API_TOKEN_DEFAULT_TTL_DAYS",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model.objects.get(username=options["user"])
        except user_model.DoesNotExist as exc:
            raise CommandError(f"no user named {options['user']!r}") from exc
        if options["ttl_days"] is not None and options["ttl_days"] < 0:
            raise CommandError("--ttl-days must be >= 0")
        issued = api_token_issue(user=user, name=options["name"], ttl_days=options["ttl_days"])
        self.stdout.write(issued.key)
        expires = issued.token.expires_at
        # stdout holds only the key (scripts read it); the expiry goes to stderr
        self.stderr.write(f"expires {expires.isoformat()}" if expires else "never expires")
