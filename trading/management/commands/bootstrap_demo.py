"""`make run` set-up: an admin login, an API token and the sample strategy catalog."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from torghut_site.auth import api_token_issue
from torghut_site.models import ApiToken
from trading.services.catalog import catalog_apply


class Command(BaseCommand):
    help = "Create the demo admin (password in var/admin-password.txt), an API token, strategies."

    def handle(self, *args: Any, **options: Any) -> None:
        var = Path(settings.VAR_DIR)
        var.mkdir(parents=True, exist_ok=True)
        password_file = var / "admin-password.txt"
        token_file = var / "api-token.txt"
        user_model = get_user_model()
        user = user_model.objects.filter(username="admin").first()
        if user is None or not password_file.exists():
            password = secrets.token_urlsafe(12)
            if user is None:
                user = user_model.objects.create_superuser("admin", "admin@localhost", password)
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            password_file.write_text(password + "\n", encoding="utf-8")
            password_file.chmod(0o600)
        if (
            not token_file.exists()
            or not ApiToken.objects.filter(user=user, name="make-run").exists()
        ):
            ApiToken.objects.filter(user=user, name="make-run").delete()
            token_file.write_text(
                api_token_issue(user=user, name="make-run").key + "\n", encoding="utf-8"
            )
            token_file.chmod(0o600)
        if settings.TRADING_STRATEGY_CONFIG_PATH:
            result = catalog_apply(
                path=Path(settings.TRADING_STRATEGY_CONFIG_PATH),
                mode=settings.TRADING_STRATEGY_CONFIG_MODE,
            )
            if result.applied:
                self.stdout.write(
                    f"strategies loaded: {', '.join(result.created + result.updated)}"
                )
        self.stdout.write(
            f"admin login: admin / {password_file.read_text(encoding='utf-8').strip()}"
        )
        self.stdout.write(f"API token:   {token_file.read_text(encoding='utf-8').strip()}")
        self.stdout.write("             (curl -H 'Authorization: Token <token>' …/trading/status)")
