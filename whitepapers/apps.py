from django.apps import AppConfig


class WhitepapersConfig(AppConfig):
    name = "whitepapers"
    verbose_name = "Whitepapers"
    default_auto_field = "django.db.models.BigAutoField"
