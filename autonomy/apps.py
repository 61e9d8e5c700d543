from django.apps import AppConfig


class AutonomyConfig(AppConfig):
    name = "autonomy"
    verbose_name = "Autonomy research"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from autonomy import checks
        from autonomy.schedule import autonomy_schedule
        from torghut_site.schedule import schedule_register

        schedule_register(self.label, autonomy_schedule)
        # registers the system checks; the drift reason codes are validated at startup
        checks.drift_reason_codes_validate()
