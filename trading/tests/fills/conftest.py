from __future__ import annotations

import pytest

from tests.servers.alpaca_server import AlpacaServer


@pytest.fixture
def alpaca():
    server = AlpacaServer().start()
    yield server
    server.stop()
