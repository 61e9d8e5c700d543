"""Progress reporting for long runs: a callback `(done, total, label)`.

The engine calls it after every unit of work (a fold, a stress case, a sweep setting). The lead
wires a database callback that updates `ResearchRun.progress_*`; `terminal_progress()` draws a bar
on stderr when it is a terminal (tqdm when importable, else a one-line fallback) and `fan_out`
sends one report to several callbacks.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any, Protocol, TextIO


class Progress(Protocol):
    def __call__(self, done: int, total: int, label: str) -> None: ...


def no_progress(done: int, total: int, label: str) -> None:
    """The default reporter: does nothing."""


class _PlainBar:
    """A `\\r`-redrawn bar with no dependency: `label [#####-----] 5/10`."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width

    def __call__(self, done: int, total: int, label: str) -> None:
        filled = self.width * done // total if total > 0 else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{label[:40]:<40} [{bar}] {done}/{total}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


class _TqdmBar:
    def __init__(self, factory: Callable[..., Any], stream: TextIO) -> None:
        self.factory = factory
        self.stream = stream
        self.bar: Any = None

    def __call__(self, done: int, total: int, label: str) -> None:
        if self.bar is None or self.bar.total != total:
            if self.bar is not None:
                self.bar.close()
            self.bar = self.factory(total=total, file=self.stream, leave=True)
        self.bar.set_description_str(label[:40], refresh=False)
        self.bar.n = done
        self.bar.refresh()
        if done >= total:
            self.bar.close()
            self.bar = None


def terminal_progress(stream: TextIO | None = None, *, use_tqdm: bool = True) -> Progress:
    """A progress bar on `stream` (stderr) when it is a terminal, else `no_progress`."""
    out = stream if stream is not None else sys.stderr
    if not out.isatty():
        return no_progress
    if use_tqdm:
        try:
            tqdm_module = importlib.import_module("tqdm")  # optional; tqdm ships no type stubs
        except ImportError:
            pass
        else:
            return _TqdmBar(tqdm_module.tqdm, out)
    return _PlainBar(out)


def fan_out(*reporters: Progress) -> Progress:
    """One reporter that calls each of `reporters` in order."""

    def report(done: int, total: int, label: str) -> None:
        for reporter in reporters:
            reporter(done, total, label)

    return report
