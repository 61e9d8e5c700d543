from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from trading.models import LiveApproval
from trading.selectors.live_approvals import live_approval_list, live_approval_state
from trading.services.live_approvals import (
    LiveApprovalError,
    live_approval_approve,
    live_approval_request,
    live_approval_revoke,
)

COLUMNS = (
    "id",
    "account",
    "status",
    "state",
    "requested_by",
    "requested_at",
    "approved_by",
    "approved_at",
    "expires_at",
    "revoked_by",
    "revoked_at",
)


def _user_name(user: AbstractBaseUser | None) -> str:
    return user.get_username() if user is not None else "-"


def _time(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def row_line(approval: LiveApproval, *, now: Any) -> str:
    return "  ".join(
        (
            str(approval.pk),
            approval.account_label,
            approval.status,
            live_approval_state(approval, now=now),
            _user_name(approval.requested_by),
            _time(approval.requested_at),
            _user_name(approval.approved_by),
            _time(approval.approved_at),
            _time(approval.expires_at),
            _user_name(approval.revoked_by),
            _time(approval.revoked_at),
        )
    )


class Command(BaseCommand):
    help = (
        "Two-person live approvals: `request` (--user --account --reason --ttl-hours), "
        "`approve` and `revoke` (--user --id --reason), `list` (--account). A refusal exits 1."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=("request", "approve", "revoke", "list"))
        parser.add_argument("--user", help="the acting staff user's username")
        parser.add_argument("--account", help="the live lane's account label")
        parser.add_argument("--reason", default="", help="why (required for every change)")
        parser.add_argument(
            "--ttl-hours",
            type=int,
            help="request: how long it may wait for approval, then how long the approval lasts "
            "(at most TRADING_LIVE_APPROVAL_MAX_TTL_HOURS)",
        )
        parser.add_argument("--id", type=int, help="approve/revoke: the approval's id")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            self._list(options["account"])
            return
        user = self._user(options["user"])
        try:
            if action == "request":
                approval = live_approval_request(
                    account_label=self._required(options, "account"),
                    actor=user,
                    reason=options["reason"],
                    ttl=self._ttl(options["ttl_hours"]),
                )
            elif action == "approve":
                approval = live_approval_approve(
                    approval_id=self._required(options, "id"), actor=user, reason=options["reason"]
                )
            else:
                approval = live_approval_revoke(
                    approval_id=self._required(options, "id"), actor=user, reason=options["reason"]
                )
        except LiveApprovalError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        approval = live_approval_list().get(pk=approval.pk)
        self.stdout.write(row_line(approval, now=timezone.now()))

    def _list(self, account: str | None) -> None:
        now = timezone.now()
        self.stdout.write("  ".join(COLUMNS))
        for approval in live_approval_list(account_label=account):
            self.stdout.write(row_line(approval, now=now))

    def _user(self, username: str | None) -> AbstractBaseUser:
        if not username:
            raise CommandError("--user is required")
        user_model = get_user_model()
        try:
            return user_model.objects.get(username=username)
        except user_model.DoesNotExist as exc:
            raise CommandError(f"no user named {username!r}") from exc

    def _required(self, options: dict[str, Any], name: str) -> Any:
        if options[name] is None:
            raise CommandError(f"--{name} is required for {options['action']}")
        return options[name]

    def _ttl(self, hours: int | None) -> timedelta:
        if hours is None:
            raise CommandError("--ttl-hours is required for request")
        try:
            return timedelta(hours=hours)
        except OverflowError as exc:
            raise CommandError(f"--ttl-hours={hours} is out of range") from exc
