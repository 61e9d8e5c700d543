"""Crash points for fault-injection tests.

`TORGHUT_FAULT_INJECT=<point>` makes the process kill itself with SIGKILL when it reaches
`fault_point(<point>)` — the way the crash tests prove that a kill -9 at the worst moment (the
broker accepted an order, our database does not know yet) loses nothing and duplicates nothing.

The variable is inherited by every process started from it (a Celery prefork pool's children, a
replacement child, a redelivered task), so each of them crashes at the point again. With
`TORGHUT_FAULT_INJECT_ONCE_FILE=<path>` as well, only the first process to reach the point
crashes: it creates `<path>` (atomically, `O_CREAT | O_EXCL`) and then kills itself; once the
file exists the point is a no-op.

Unset in every real deployment; reading one or two environment variables is all it costs.
"""

from __future__ import annotations

import os
import signal


def fault_point(name: str) -> None:
    if os.environ.get("TORGHUT_FAULT_INJECT") != name:
        return
    once = os.environ.get("TORGHUT_FAULT_INJECT_ONCE_FILE")
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return  # this point already crashed a process
    os.kill(os.getpid(), signal.SIGKILL)
