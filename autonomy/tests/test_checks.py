"""autonomy.E001: the drift reason codes of the settings are the detector's."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.test import override_settings

from autonomy import drift
from autonomy.checks import drift_reason_code_problems


def test_the_settings_defaults_are_the_detectors_codes():
    assert tuple(settings.TRADING_DRIFT_TRIGGER_RETRAIN_REASON_CODES) == (
        drift.DATA_CODES + drift.MODEL_CODES
    )
    assert tuple(settings.TRADING_DRIFT_TRIGGER_RESELECTION_REASON_CODES) == (
        drift.PERFORMANCE_CODES
    )
    assert tuple(settings.TRADING_DRIFT_ROLLBACK_REASON_CODES) == drift.PERFORMANCE_CODES
    assert drift_reason_code_problems() == []


@override_settings(TRADING_DRIFT_TRIGGER_RESELECTION_REASON_CODES=["zeta", "alpha"])
def test_an_unknown_code_is_a_system_check_error_naming_the_setting():
    errors = [m for m in checks.run_checks() if m.id == "autonomy.E001"]
    assert [(m.level, m.msg) for m in errors] == [
        (
            checks.ERROR,
            "TRADING_DRIFT_TRIGGER_RESELECTION_REASON_CODES has unknown drift reason code(s) "
            f"alpha, zeta (known: {', '.join(drift.ALL_CODES)})",
        )
    ]
