"""Text extraction in a child process under CPU, memory, wall-clock and output limits.

The crafted PDF (`make_form_bomb`: a page invoking a form XObject hundreds of times, that form
invoking another hundreds of times, the innermost showing one long `Tj` string) is about 1.4 KB
and would make an unbounded extractor produce 3.2e10 characters. Each limit is set through its
WHITEPAPER_EXTRACT_* setting and ends the extraction with a recorded outcome; the call's wall
time stays within the limit plus the interpreter's start, and no child process is left behind.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from whitepapers.extract import CHILD, PdfText, pdf_text_extract
from whitepapers.tests.pdfs import make_form_bomb, make_pdf

BOMB = make_form_bomb()
# one form shown once whose string is 20 MB of letters: small on disk, large in memory
MEMORY_BOMB = make_form_bomb(calls=1, nesting=1, text_bytes=20_000_000)
STARTUP_ALLOWANCE = 2.0  # interpreter start, pypdf import, reaping


def children_alive() -> list[int]:
    """This process's children running extract_child.py (there must be none after a call).
    Only its own: another pytest-xdist worker may be extracting a PDF at the same moment."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        parent = next(
            (line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), ""
        )
        if str(CHILD).encode() in cmdline and parent == str(os.getpid()):
            alive.append(int(entry.name))
    return alive


def timed(data: bytes) -> tuple[float, PdfText]:
    started = time.monotonic()
    text = pdf_text_extract(data)
    return time.monotonic() - started, text


def test_the_crafted_pdf_is_small():
    assert len(BOMB) < 10_000
    assert len(MEMORY_BOMB) < 25_000


def test_cpu_limit_ends_the_crafted_pdf(settings):
    settings.WHITEPAPER_EXTRACT_CPU_SECONDS = 1
    settings.WHITEPAPER_EXTRACT_TIMEOUT_SECONDS = 30.0
    settings.WHITEPAPER_EXTRACT_MAX_CHARS = 100_000_000
    elapsed, text = timed(BOMB)
    assert (text.text, text.page_count, text.limit_exceeded) == ("", 0, "cpu")
    assert text.warnings == ["extraction_limit_exceeded:cpu", "more than 1 s of CPU"]
    assert elapsed < 1 + 1 + STARTUP_ALLOWANCE  # soft limit, the hard one a second later
    assert children_alive() == []


def test_wall_clock_limit_kills_the_child(settings):
    settings.WHITEPAPER_EXTRACT_CPU_SECONDS = 60
    settings.WHITEPAPER_EXTRACT_TIMEOUT_SECONDS = 1.5
    settings.WHITEPAPER_EXTRACT_MAX_CHARS = 100_000_000
    elapsed, text = timed(BOMB)
    assert (text.text, text.limit_exceeded) == ("", "timeout")
    assert text.warnings == ["extraction_limit_exceeded:timeout", "no answer within 1.5 s"]
    assert 1.5 <= elapsed < 1.5 + STARTUP_ALLOWANCE
    assert children_alive() == []


def test_memory_limit_ends_the_extraction(settings):
    settings.WHITEPAPER_EXTRACT_MEMORY_MB = 128
    settings.WHITEPAPER_EXTRACT_CPU_SECONDS = 30
    settings.WHITEPAPER_EXTRACT_TIMEOUT_SECONDS = 30.0
    settings.WHITEPAPER_EXTRACT_MAX_CHARS = 100_000_000
    elapsed, text = timed(MEMORY_BOMB)
    assert (text.text, text.limit_exceeded) == ("", "memory")
    assert text.warnings == ["extraction_limit_exceeded:memory", "more than 128 MB of memory"]
    assert elapsed < 10
    assert children_alive() == []


def test_the_same_pdf_with_enough_memory_is_read(settings):
    settings.WHITEPAPER_EXTRACT_MEMORY_MB = 1024
    settings.WHITEPAPER_EXTRACT_MAX_CHARS = 100_000_000
    _, text = timed(MEMORY_BOMB)
    assert text.limit_exceeded is None
    assert text.char_count == 20_000_000


@pytest.mark.parametrize("max_chars", [1000, 50_000])
def test_output_limit_keeps_the_text_up_to_max_chars(settings, max_chars):
    settings.WHITEPAPER_EXTRACT_MAX_CHARS = max_chars
    settings.WHITEPAPER_EXTRACT_TIMEOUT_SECONDS = 30.0
    elapsed, text = timed(BOMB)
    assert text.limit_exceeded == "output"
    assert text.text == "A" * max_chars
    assert (text.char_count, text.page_count) == (max_chars, 1)
    assert "extraction_limit_exceeded:output" in text.warnings
    assert elapsed < 10


def test_output_limit_stops_at_a_page_boundary(settings):
    settings.WHITEPAPER_EXTRACT_MAX_CHARS = 1000
    pages = ["x" * 600, "y" * 600, "z" * 600]
    _, text = timed(make_pdf(pages))
    assert text.limit_exceeded == "output"
    assert text.text == ("x" * 600 + "\n\n" + "y" * 600)[:1000]
    assert text.page_count == 3


def test_an_ordinary_pdf_is_unaffected_by_the_limits(settings):
    settings.WHITEPAPER_EXTRACT_CPU_SECONDS = 1
    settings.WHITEPAPER_EXTRACT_TIMEOUT_SECONDS = 1.0
    settings.WHITEPAPER_EXTRACT_MAX_CHARS = 1000
    settings.WHITEPAPER_EXTRACT_MEMORY_MB = 128
    _, text = timed(make_pdf(["Attention", "is all you need"]))
    assert (text.text, text.page_count, text.limit_exceeded) == (
        "Attention\n\nis all you need",
        2,
        None,
    )


def test_the_child_sees_no_environment(tmp_path, monkeypatch):
    """The child starts with an empty environment: no credential of the worker reaches pypdf.
    (A stand-in child answers with its own environment as the text.)"""
    monkeypatch.setenv("WHITEPAPER_GITHUB_TOKEN", "ghp-secret")
    probe = tmp_path / "extract_child.py"
    probe.write_text(
        "import json, os, sys\n"
        "sys.stdout.write(json.dumps({'text': json.dumps(dict(os.environ)), 'page_count': 0,"
        " 'warnings': []}))\n"
    )
    monkeypatch.setattr("whitepapers.extract.CHILD", probe)
    text = pdf_text_extract(make_pdf(["ok"]))
    # Python's locale coercion may add LC_CTYPE; nothing else
    assert set(json.loads(text.text)) <= {"LC_CTYPE"}


def test_a_crashing_child_is_a_failed_extraction(tmp_path, monkeypatch):
    """A child that dies without an answer gives empty text and the reason, never an exception."""
    broken = tmp_path / "extract_child.py"
    broken.write_text("import sys\nsys.stderr.write('boom')\nsys.exit(7)\n")
    monkeypatch.setattr("whitepapers.extract.CHILD", broken)
    text = pdf_text_extract(make_pdf(["x"]))
    assert (text.text, text.limit_exceeded) == ("", "failed")
    assert text.warnings == ["extraction_failed: exit 7: boom"]
