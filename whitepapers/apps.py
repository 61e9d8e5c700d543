from django.apps import AppConfig


class WhitepapersConfig(AppConfig):
    name = "whitepapers"
    verbose_name = "Whitepapers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from torghut_site.schedule import schedule_register
        from whitepapers.schedule import whitepaper_schedule

        schedule_register(self.label, whitepaper_schedule)
