"""Crash points for fault-injection tests.

`TORGHUT_FAULT_INJECT=<point>` makes the process kill itself with SIGKILL when it reaches
`fault_point(<point>)` — the way the crash tests prove that a kill -9 at the worst moment (the
broker accepted an order, our database does not know yet) loses nothing and duplicates nothing.
Unset in every real deployment; reading one environment variable is all it costs.
"""

from __future__ import annotations

import os
import signal


def fault_point(name: str) -> None:
    if os.environ.get("TORGHUT_FAULT_INJECT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
