"""What Django's error reports may show of the settings (the DEBUG technical 500 page, error
e-mails, `SafeExceptionReporterFilter.get_safe_settings()`)."""

from __future__ import annotations

import re
from typing import Any

from django.views import debug

# scheme://user:password@host — Redis, Celery broker and cache URLs carry their password inline
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@/\s]+@", re.IGNORECASE)


class SafeExceptionReporterFilter(debug.SafeExceptionReporterFilter):
    """Django's filter (settings named like API, KEY, PASS, SECRET, TOKEN… are hidden), plus the
    password of any URL in any setting, however the setting is named."""

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):
            return _URL_PASSWORD.sub(rf"\g<head>:{self.cleansed_substitute}@", cleansed)
        return cleansed
