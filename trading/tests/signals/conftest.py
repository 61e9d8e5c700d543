import uuid

import pytest

from tests.servers.clickhouse_server import ClickHouseServer, close_engine
from trading.signals import clickhouse


@pytest.fixture(scope="session")
def clickhouse_server():
    server = ClickHouseServer(user="torghut", password="s3cret").start()
    yield server
    server.stop()
    close_engine()


@pytest.fixture
def ch(clickhouse_server):
    """The shared server with a fresh database for this test; caches and faults reset."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    clickhouse_server.execute(f"CREATE DATABASE {database}")
    clickhouse.clear_caches()
    clickhouse_server.clear_faults()
    with clickhouse_server.lock:
        clickhouse_server.requests.clear()
    clickhouse_server.database = database
    yield clickhouse_server
    clickhouse_server.execute(f"DROP DATABASE IF EXISTS {database}")
    clickhouse.clear_caches()
