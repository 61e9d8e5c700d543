from django.apps import AppConfig


class AutonomyConfig(AppConfig):
    name = "autonomy"
    verbose_name = "Autonomy research"
    default_auto_field = "django.db.models.BigAutoField"
