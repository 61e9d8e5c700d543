"""`manage.py live_approval request|approve|revoke|list`: thin over the services; a refusal
prints the service's message and exits 1, writing nothing."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.conftest import paper_lane, staff_user
from trading.models import LiveApproval, SafetyEvent
from trading.selectors.safety import live_approval_active

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def live_lane(settings):
    settings.TRADING_LANES = [paper_lane("live-1", mode="live")]
    settings.TRADING_LIVE_APPROVAL_MAX_TTL_HOURS = 24
    staff_user("rita", "add_liveapproval")
    staff_user("omar", "approve_liveapproval")


def manage(capsys: Any, *args: str) -> tuple[int, str, str]:
    """Run the command in this process (inside the test's transaction): (exit code, stdout,
    stderr) as `manage.py` would give them; a CommandError is what makes it exit non-zero."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("live_approval", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), f"CommandError: {exc}\n"
    return 0, out.getvalue(), err.getvalue()


def state() -> tuple[list[Any], int]:
    return list(LiveApproval.objects.values_list("pk", "status")), SafetyEvent.objects.count()


def test_request_approve_list_revoke(capsys):
    now = timezone.now().replace(microsecond=0)
    with time_machine.travel(now, tick=False):
        code, out, err = manage(
            capsys,
            "request",
            "--user=rita",
            "--account=live-1",
            "--reason=go live",
            "--ttl-hours=2",
        )
    assert (code, err) == (0, "")
    approval = LiveApproval.objects.get()
    at = now.isoformat()
    assert out == f"{approval.pk}  live-1  requested  requested  rita  {at}  -  -  -  -  -\n"
    with time_machine.travel(now + timedelta(minutes=5), tick=False):
        code, out, err = manage(
            capsys, "approve", "--user=omar", f"--id={approval.pk}", "--reason=checked"
        )
        assert (code, err) == (0, "")
        approved_at = (now + timedelta(minutes=5)).isoformat()
        expires = (now + timedelta(hours=2, minutes=5)).isoformat()
        assert out == (
            f"{approval.pk}  live-1  approved  approved  rita  {at}  omar  {approved_at}  "
            f"{expires}  -  -\n"
        )
        code, out, _ = manage(capsys, "list")
        assert out.splitlines() == [
            "id  account  status  state  requested_by  requested_at  approved_by  approved_at  "
            "expires_at  revoked_by  revoked_at",
            f"{approval.pk}  live-1  approved  approved  rita  {at}  omar  {approved_at}  "
            f"{expires}  -  -",
        ]
    assert live_approval_active("live-1") == approval
    code, out, err = manage(
        capsys, "revoke", "--user=omar", f"--id={approval.pk}", "--reason=pause"
    )
    assert (code, err) == (0, "")
    assert out.split("  ")[2:4] == ["revoked", "revoked"]
    assert live_approval_active("live-1") is None
    assert list(SafetyEvent.objects.order_by("pk").values_list("kind", "actor_label")) == [
        ("live_approval_requested", "rita"),
        ("live_approval_granted", "omar"),
        ("live_approval_revoked", "omar"),
    ]


def request_one() -> LiveApproval:
    from django.contrib.auth import get_user_model

    from trading.services.live_approvals import live_approval_request

    return live_approval_request(
        account_label="live-1",
        actor=get_user_model().objects.get(username="rita"),
        reason="go live",
        ttl=timedelta(hours=1),
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["request", "--user=omar", "--account=live-1", "--reason=x", "--ttl-hours=1"],
            "permission_denied: omar lacks the permission trading.add_liveapproval",
        ),
        (
            ["request", "--user=rita", "--account=paper", "--reason=x", "--ttl-hours=1"],
            "unknown_lane: 'paper' is not a configured live lane (live lanes: live-1)",
        ),
        (
            ["request", "--user=rita", "--account=live-1", "--reason=x", "--ttl-hours=25"],
            "ttl_above_max: a TTL of 1 day, 1:00:00 is above TRADING_LIVE_APPROVAL_MAX_TTL_HOURS=24",
        ),
        (
            ["request", "--user=rita", "--account=live-1", "--ttl-hours=1"],
            "reason_required: a reason is required",
        ),
        (
            ["request", "--user=rita", "--account=live-1", "--reason=x"],
            "--ttl-hours is required for request",
        ),
        (
            ["request", "--user=nobody", "--account=live-1", "--reason=x", "--ttl-hours=1"],
            "no user named 'nobody'",
        ),
        (
            ["approve", "--user=omar", "--id=424242", "--reason=x"],
            "not_found: no live approval 424242",
        ),
        (["approve", "--user=omar", "--reason=x"], "--id is required for approve"),
    ],
)
def test_refusals_exit_1_with_the_message_and_write_nothing(capsys, args, message):
    before = state()
    code, out, err = manage(capsys, *args)
    assert (code, out, err) == (1, "", f"CommandError: {message}\n")
    assert state() == before


def test_the_requester_cannot_approve_from_the_command_line(capsys, settings):
    approval = request_one()
    before = state()
    staff_user("rita-approves", "approve_liveapproval")
    code, _, err = manage(capsys, "approve", "--user=rita", f"--id={approval.pk}", "--reason=me")
    assert code == 1
    assert (
        err
        == "CommandError: permission_denied: rita lacks the permission trading.approve_liveapproval\n"
    )
    from django.contrib.auth.models import Permission

    rita = LiveApproval.objects.get().requested_by
    rita.user_permissions.add(Permission.objects.get(codename="approve_liveapproval"))
    code, _, err = manage(capsys, "approve", "--user=rita", f"--id={approval.pk}", "--reason=me")
    assert (code, err) == (
        1,
        f"CommandError: same_person: rita requested live approval {approval.pk}: "
        "a different person must approve it\n",
    )
    assert state() == before


def test_a_non_staff_user_and_an_expired_request_are_refused(capsys):
    approval = request_one()
    staff_user("outsider", "approve_liveapproval", is_staff=False)
    before = state()
    code, _, err = manage(capsys, "approve", "--user=outsider", f"--id={approval.pk}", "--reason=x")
    assert (code, err) == (
        1,
        "CommandError: not_staff: outsider is not an active staff user: "
        "live approvals need staff users\n",
    )
    with time_machine.travel(approval.requested_at + timedelta(hours=1), tick=False):
        code, _, err = manage(capsys, "approve", "--user=omar", f"--id={approval.pk}", "--reason=x")
    assert code == 1
    assert err.startswith(f"CommandError: request_expired: live approval {approval.pk} was ")
    assert state() == before


def test_approve_twice_and_revoke_twice_exit_1(capsys):
    approval = request_one()
    assert manage(capsys, "approve", "--user=omar", f"--id={approval.pk}", "--reason=a")[0] == 0
    before = state()
    code, _, err = manage(capsys, "approve", "--user=omar", f"--id={approval.pk}", "--reason=b")
    assert (code, err) == (
        1,
        f"CommandError: not_requested: live approval {approval.pk} is approved: "
        "only a request can be approved\n",
    )
    assert state() == before
    assert manage(capsys, "revoke", "--user=omar", f"--id={approval.pk}", "--reason=c")[0] == 0
    before = state()
    code, _, err = manage(capsys, "revoke", "--user=omar", f"--id={approval.pk}", "--reason=d")
    assert (code, err) == (
        1,
        f"CommandError: already_revoked: live approval {approval.pk} is already revoked\n",
    )
    assert state() == before


def test_list_filters_by_account_and_shows_an_expired_request(capsys, settings):
    approval = request_one()
    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=False):
        code, out, _ = manage(capsys, "list", "--account=live-1")
    assert code == 0
    assert out.splitlines()[1].split("  ")[:5] == [
        str(approval.pk),
        "live-1",
        "requested",
        "request_expired",
        "rita",
    ]
    code, out, _ = manage(capsys, "list", "--account=live-2")
    assert out.splitlines()[1:] == []


@pytest.mark.django_db(transaction=True)
def test_a_refusal_exits_1_from_manage_py():
    """The real process: the message on stderr, exit status 1, nothing written."""
    from tests.conftest import manage_in_test_db

    result = manage_in_test_db(
        "live_approval",
        "request",
        "--user=rita",
        "--account=live-1",
        "--reason=go",
        "--ttl-hours=1",
        env={"TRADING_MODE": "paper", "TRADING_ACCOUNT_LABEL": "paper"},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "CommandError: unknown_lane: 'live-1' is not a configured live lane "
        "(live lanes: none configured)"
    )
    assert not LiveApproval.objects.exists()
    assert not SafetyEvent.objects.exists()
