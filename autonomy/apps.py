from django.apps import AppConfig


class AutonomyConfig(AppConfig):
    name = "autonomy"
    verbose_name = "Autonomy research"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # registers the system checks; the drift reason codes are validated at startup
        from autonomy import checks

        checks.drift_reason_codes_validate()
