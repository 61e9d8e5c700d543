"""System checks of the trading app (run by `manage.py migrate` and `check --database default`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.db import DatabaseError


@register(Tags.database)
def dspy_artifact_promoted(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """LLM_DSPY_RUNTIME_MODE=shadow|active must name a stored, promoted artifact of the
    configured program (`trading.E001`); the settings already refuse a missing or malformed
    hash."""
    mode = settings.LLM_DSPY_RUNTIME_MODE
    if mode == "disabled" or not databases:
        return []
    from trading.llm.dspy_program import PROGRAMS
    from trading.llm.dspy_runtime import promoted_compile_artifact

    artifact_hash = settings.LLM_DSPY_ARTIFACT_HASH
    program = (settings.LLM_DSPY_PROGRAM_NAME, settings.LLM_DSPY_SIGNATURE_VERSION)
    if program not in PROGRAMS:
        return [
            Error(
                f"LLM_DSPY_PROGRAM_NAME/LLM_DSPY_SIGNATURE_VERSION={program[0]}/{program[1]} is "
                "not a known DSPy program",
                id="trading.E002",
            )
        ]
    try:
        row = promoted_compile_artifact(artifact_hash)
    except DatabaseError as exc:
        return [Error(f"cannot verify LLM_DSPY_ARTIFACT_HASH: {exc}", id="trading.E001")]
    if row is None:
        return [
            Error(
                f"LLM_DSPY_RUNTIME_MODE={mode} but LLM_DSPY_ARTIFACT_HASH={artifact_hash} is not "
                "a stored, promoted DSPy artifact",
                hint="compile, evaluate and promote one with `manage.py dspy`, or set "
                "LLM_DSPY_RUNTIME_MODE=disabled",
                id="trading.E001",
            )
        ]
    if (row.program_name, row.signature_version) != program:
        return [
            Error(
                f"LLM_DSPY_ARTIFACT_HASH={artifact_hash} is a {row.program_name}/"
                f"{row.signature_version} artifact, not {program[0]}/{program[1]}",
                id="trading.E001",
            )
        ]
    return []
