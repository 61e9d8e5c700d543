"""Settings for worker processes that tests start and that download from loopback test servers.

`torghut_site.settings` plus the test-only outbound allowance: PDFs may come from 127.0.0.1
(whitepapers/pdf.py::pdf_fetch_policy). This module lives under tests/, which the image does not
contain (.dockerignore), so no deployment can select it; no environment variable sets the
allowance.
"""

from torghut_site.settings import *  # noqa: F403

OUTBOUND_TEST_ALLOW_LOOPBACK = True
