"""Django's PostgreSQL backend with a health check that costs no round trip when the
connection is quiet.

With CONN_HEALTH_CHECKS (`torghut_site.dburl`), Django checks a persistent connection before
the first query of each request by sending `SELECT 1` and waiting for the answer: one round
trip to Postgres per API request, and the server's CPU for it, on a path that runs its own
query right after. Here the check first asks the client side: a connection libpq reports open,
idle outside a transaction, whose socket has nothing to read, is usable. A server that went
away (restarted, `pg_terminate_backend`, `idle_session_timeout`) sends its goodbye or closes the
socket, which makes it readable; then, and in every case this check cannot decide, Django's own
`SELECT 1` decides. A session the server ends in the instant before the check (its goodbye
still on the way) passes it, and the request's first query fails as it would have had the
server ended the session just after Django's `SELECT 1`; a peer that vanished without a word
(no FIN) hangs `SELECT 1` exactly as it hangs the query after it.
"""

from __future__ import annotations

import select
from typing import Any

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        if self.connection is None:
            return False
        if _quiet_and_idle(self.connection):
            return True
        return bool(super().is_usable())


def _quiet_and_idle(connection: Any) -> bool:
    """Open, idle outside a transaction, with nothing waiting to be read on its socket."""
    if connection.closed or connection.pgconn.status != pq.ConnStatus.OK:
        return False
    if connection.pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return False
    if not hasattr(select, "poll"):  # no poll() on this platform: let SELECT 1 decide
        return False
    poller = select.poll()
    poller.register(connection.pgconn.socket, select.POLLIN | select.POLLPRI)
    return not poller.poll(0)
