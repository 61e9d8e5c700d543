"""System checks of the autonomy app's settings.

`autonomy.E001`: every drift reason code named in a `TRADING_DRIFT_*_REASON_CODES` setting is one
the detector knows (`autonomy.drift.ALL_CODES`). Settings cannot import the detector (they are the
ground layer, autonomy sits above it), so the check runs here. `AutonomyConfig.ready()` runs it at
`django.setup()` and raises its problems as a `ConfigError`, so every process (web, worker, beat,
consumer, `manage.py check`) still refuses to start with the settings' own one message and exit
status 2, as it did when settings validated the codes themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from autonomy import drift
from torghut_site.env import ConfigError

DRIFT_REASON_CODE_SETTINGS = (
    "TRADING_DRIFT_TRIGGER_RETRAIN_REASON_CODES",
    "TRADING_DRIFT_TRIGGER_RESELECTION_REASON_CODES",
    "TRADING_DRIFT_ROLLBACK_REASON_CODES",
)


def drift_reason_code_problems() -> list[str]:
    """One message per setting that names a code the detector does not know."""
    problems = []
    for name in DRIFT_REASON_CODE_SETTINGS:
        unknown = sorted(set(getattr(settings, name)) - set(drift.ALL_CODES))
        if unknown:
            problems.append(
                f"{name} has unknown drift reason code(s) {', '.join(unknown)} (known: "
                f"{', '.join(drift.ALL_CODES)})"
            )
    return problems


@register()
def drift_reason_codes_check(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    return [Error(problem, id="autonomy.E001") for problem in drift_reason_code_problems()]


def drift_reason_codes_validate() -> None:
    """Raise the check's problems as the one startup `ConfigError` (called at app loading)."""
    problems = drift_reason_code_problems()
    if problems:
        raise ConfigError(problems)
