"""The numba decorator of the compiled kernels (`trading.kernels`, `autonomy.engine.kernels`), and
where numba keeps their machine code. Import numba only through this module, so the cache place
is decided before numba reads its configuration.

`@kernel` is `numba.njit(cache=True, error_model="numpy")`:
- strict IEEE arithmetic (numba's default, `fastmath` off: no fused multiply-add, no
  reassociation), so a kernel gives the bits of the same operations written in Python or numpy;
- `error_model="numpy"`: a float division by zero gives inf/NaN as in numpy, without numba's
  per-division check;
- `cache=True`: the compiled code is stored and loaded by later processes, so compiling (a few
  seconds for all kernels, `jit_compile_cold_s` in bench/results/backtest_engine.json) is paid
  once per machine and source version; a process still pays about a second on its first call
  (numba's start-up and the cache load, `jit_first_call_cached_s`).

numba stores the cache in `__pycache__` beside each kernel module. Where that directory cannot be
written (the image's root filesystem is read-only at run time, see Dockerfile), numba would refuse
to load the module at all, so the cache goes to `<temp dir>/torghut-numba` instead (the pods mount
an emptyDir at /tmp: deploy/k8s/). `NUMBA_CACHE_DIR`, when set, wins (numba's own variable).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

SOURCE_DIR = Path(__file__).resolve().parent


def numba_cache_dir(environ: MutableMapping[str, str], source_writable: bool) -> str | None:
    """The NUMBA_CACHE_DIR to set: None when it is set already or numba's in-tree default can be
    written, else a directory under the temp dir."""
    if environ.get("NUMBA_CACHE_DIR") or source_writable:
        return None
    return str(Path(tempfile.gettempdir()) / "torghut-numba")


def _source_writable() -> bool:
    cache = SOURCE_DIR / "__pycache__"
    return os.access(cache if cache.exists() else SOURCE_DIR, os.W_OK)


if (_chosen := numba_cache_dir(os.environ, _source_writable())) is not None:
    os.environ["NUMBA_CACHE_DIR"] = _chosen

from numba import njit  # noqa: E402  (after the cache place is decided)


def kernel(fn: Callable[..., Any]) -> Any:
    """Compile `fn` with numba (see module doc); the result is called like `fn`."""
    return njit(cache=True, error_model="numpy")(fn)


def inline_kernel(fn: Callable[..., Any]) -> Any:
    """`kernel` whose body numba copies into each kernel that calls it (numba's IR inlining), so
    a caller passing constants gets a version specialised on them (branches on them vanish)."""
    return njit(cache=True, error_model="numpy", inline="always")(fn)
