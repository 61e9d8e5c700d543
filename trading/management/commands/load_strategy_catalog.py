from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading.services.catalog import CatalogError, catalog_apply


class Command(BaseCommand):
    help = (
        "Apply a strategy catalog YAML file (merge: upsert by name; sync: also disable the rest)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--path", default=settings.TRADING_STRATEGY_CONFIG_PATH)
        parser.add_argument(
            "--mode", choices=("merge", "sync"), default=settings.TRADING_STRATEGY_CONFIG_MODE
        )
        parser.add_argument(
            "--force", action="store_true", help="apply even if this file was applied already"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["path"]:
            raise CommandError("no --path and no TRADING_STRATEGY_CONFIG_PATH")
        try:
            result = catalog_apply(
                path=Path(options["path"]), mode=options["mode"], force=options["force"]
            )
        except (CatalogError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        if not result.applied:
            self.stdout.write(f"unchanged (sha256 {result.file_hash[:12]} already applied)")
            return
        self.stdout.write(
            f"applied {result.file_hash[:12]}: created {result.created}, updated {result.updated}, "
            f"disabled {result.disabled}"
        )
