from django.apps import AppConfig


class AutonomyConfig(AppConfig):
    name = "autonomy"
    verbose_name = "Autonomy research"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from autonomy import checks
        from autonomy.schedule import autonomy_schedule
        from autonomy.selectors import autonomy_status_brief, evidence_continuity_brief
        from autonomy.serializers import AutonomyBriefSerializer, ContinuityBriefSerializer
        from torghut_site.schedule import schedule_register
        from trading.ports import status_section_register

        schedule_register(self.label, autonomy_schedule)
        status_section_register(
            name="autonomy", section=autonomy_status_brief, schema=AutonomyBriefSerializer
        )
        status_section_register(
            name="evidence_continuity",
            section=evidence_continuity_brief,
            schema=ContinuityBriefSerializer,
        )
        # registers the system checks; the drift reason codes are validated at startup
        checks.drift_reason_codes_validate()
