"""Live approvals need two people: a request by one staff user, an approval by another.

Every approval recorded before this migration was given by one person. Such rows become
`revoked` (with `revoked_at` = the time this migration runs, unless they were already revoked,
and `requested_by` = their approver), and each one that was still in force gets a
`live_approval_revoked` safety event. Live trading therefore stops until a new two-person
approval is recorded: the safe direction.
"""

import datetime

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

MIGRATION = "migration 0008_live_approval_two_person"


def revoke_single_person_approvals(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # the foreign-key checks of these UPDATEs run now, not at commit: Postgres refuses the
        # ALTER TABLEs that follow while trigger events are pending
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    LiveApproval = apps.get_model("trading", "LiveApproval")
    SafetyEvent = apps.get_model("trading", "SafetyEvent")
    now = django.utils.timezone.now()
    in_force = list(
        LiveApproval.objects.filter(revoked_at__isnull=True)
        .order_by("pk")
        .values_list("pk", "account_label")
    )
    LiveApproval.objects.update(
        status="revoked",
        requested_by=models.F("approved_by"),
        requested_at=models.F("approved_at"),
    )
    LiveApproval.objects.filter(revoked_at__isnull=True).update(revoked_at=now)
    SafetyEvent.objects.bulk_create(
        [
            SafetyEvent(
                kind="live_approval_revoked",
                account_label=label,
                actor=None,
                actor_label=MIGRATION,
                reason="single-person live approval revoked: live trading needs a request and "
                "an approval by two different people",
                details={"approval_id": pk},
            )
            for pk, label in in_force
        ]
    )
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")


class Migration(migrations.Migration):

    dependencies = [
        ("trading", "0007_strategy_uncertainty_action"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="liveapproval",
            name="live_approval_active_idx",
        ),
        migrations.AddField(
            model_name="liveapproval",
            name="status",
            field=models.CharField(
                choices=[
                    ("requested", "requested"),
                    ("approved", "approved"),
                    ("revoked", "revoked"),
                ],
                default="requested",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="liveapproval",
            name="requested_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name="liveapproval",
            name="requested_by",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="liveapproval",
            name="ttl",
            field=models.DurationField(
                blank=True,
                help_text="how long the request waits for approval, and how long the approval lasts",
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="liveapproval",
            name="approved_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="liveapproval",
            name="approved_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RemoveConstraint(
            model_name="safetyevent",
            name="safety_event_kind_valid",
        ),
        migrations.AlterField(
            model_name="safetyevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("kill_switch_on", "kill switch engaged"),
                    ("kill_switch_off", "kill switch released"),
                    ("kill_switch_cancel", "open orders cancelled by kill switch"),
                    ("emergency_stop_triggered", "emergency stop triggered"),
                    ("emergency_stop_recovered", "emergency stop auto-recovered"),
                    ("emergency_stop_cleared", "emergency stop cleared by hand"),
                    ("live_approval_requested", "live approval requested"),
                    ("live_approval_granted", "live approval granted"),
                    ("live_approval_revoked", "live approval revoked"),
                ],
                max_length=40,
            ),
        ),
        migrations.AddConstraint(
            model_name="safetyevent",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "kind__in",
                        [
                            "kill_switch_on",
                            "kill_switch_off",
                            "kill_switch_cancel",
                            "emergency_stop_triggered",
                            "emergency_stop_recovered",
                            "emergency_stop_cleared",
                            "live_approval_requested",
                            "live_approval_granted",
                            "live_approval_revoked",
                        ],
                    )
                ),
                name="safety_event_kind_valid",
            ),
        ),
        migrations.RunPython(revoke_single_person_approvals, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="liveapproval",
            name="requested_by",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterModelOptions(
            name="liveapproval",
            options={
                "ordering": ["-requested_at", "-pk"],
                "permissions": [("approve_liveapproval", "Can approve live trading")],
            },
        ),
        migrations.AddIndex(
            model_name="liveapproval",
            index=models.Index(
                condition=models.Q(("status", "approved")),
                fields=["account_label"],
                name="live_approval_approved_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="liveapproval",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["requested", "approved", "revoked"])),
                name="live_approval_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="liveapproval",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "approved"), _negated=True),
                    models.Q(
                        ("approved_at__isnull", False),
                        ("approved_by__isnull", False),
                        ("expires_at__gt", models.F("approved_at")),
                        ("expires_at__isnull", False),
                    ),
                    _connector="OR",
                ),
                name="live_approval_approved_complete",
            ),
        ),
        migrations.AddConstraint(
            model_name="liveapproval",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "approved"), _negated=True),
                    models.Q(("approved_by", models.F("requested_by")), _negated=True),
                    _connector="OR",
                ),
                name="live_approval_two_people",
            ),
        ),
        migrations.AddConstraint(
            model_name="liveapproval",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "requested"), _negated=True),
                    models.Q(
                        ("approved_at__isnull", True),
                        ("approved_by__isnull", True),
                        ("expires_at__isnull", True),
                    ),
                    _connector="OR",
                ),
                name="live_approval_requested_unapproved",
            ),
        ),
        migrations.AddConstraint(
            model_name="liveapproval",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("revoked_at__isnull", False), ("status", "revoked")),
                    models.Q(
                        models.Q(("status", "revoked"), _negated=True),
                        ("revoked_at__isnull", True),
                        ("revoked_by__isnull", True),
                    ),
                    _connector="OR",
                ),
                name="live_approval_revoked_has_time",
            ),
        ),
        migrations.AddConstraint(
            model_name="liveapproval",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("ttl__gt", datetime.timedelta(0)), ("ttl__isnull", False)),
                    ("status", "revoked"),
                    _connector="OR",
                ),
                name="live_approval_ttl_positive",
            ),
        ),
    ]
