from __future__ import annotations

from tests.conftest import flipt, flipt_server  # noqa: F401  (the Flipt stand-in)
