"""System checks of the trading app, and the DSPy artifact guard the worker and the cycle use.

`manage.py migrate` runs database checks before it migrates, so a check that needs a table must
not fail on a database that does not have it yet: on a fresh database the DSPy check has nothing
to verify, `migrate` creates the tables, and the Celery worker (at start) and every trade cycle
refuse to run until the configured artifact is promoted (`dspy_artifact_error`).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.db import DatabaseError, connections

from trading.models.llm import LLMDspyWorkflowArtifact

PROMOTE_HINT = (
    "compile, evaluate and promote one with `manage.py dspy`, or set LLM_DSPY_RUNTIME_MODE=disabled"
)


def dspy_artifact_error() -> Error | None:
    """Why the configured DSPy runtime cannot run, or None (also None when it is disabled)."""
    mode = settings.LLM_DSPY_RUNTIME_MODE
    if mode == "disabled":
        return None
    # imported here: `trading.llm.dspy.program` imports dspy (about a second), which the web
    # process and a cycle without a DSPy runtime never need
    from trading.llm.dspy.program import PROGRAMS
    from trading.llm.dspy.runtime import promoted_compile_artifact

    artifact_hash = settings.LLM_DSPY_ARTIFACT_HASH
    program = (settings.LLM_DSPY_PROGRAM_NAME, settings.LLM_DSPY_SIGNATURE_VERSION)
    if program not in PROGRAMS:
        return Error(
            f"LLM_DSPY_PROGRAM_NAME/LLM_DSPY_SIGNATURE_VERSION={program[0]}/{program[1]} is "
            "not a known DSPy program",
            id="trading.E002",
        )
    try:
        row = promoted_compile_artifact(artifact_hash)
    except DatabaseError as exc:
        return Error(f"cannot verify LLM_DSPY_ARTIFACT_HASH: {exc}", id="trading.E001")
    if row is None:
        return Error(
            f"LLM_DSPY_RUNTIME_MODE={mode} but LLM_DSPY_ARTIFACT_HASH={artifact_hash} is not "
            "a stored, promoted DSPy artifact",
            hint=PROMOTE_HINT,
            id="trading.E001",
        )
    if (row.program_name, row.signature_version) != program:
        return Error(
            f"LLM_DSPY_ARTIFACT_HASH={artifact_hash} is a {row.program_name}/"
            f"{row.signature_version} artifact, not {program[0]}/{program[1]}",
            id="trading.E001",
        )
    return None


def _artifact_table_exists(alias: str) -> bool:
    table = LLMDspyWorkflowArtifact._meta.db_table
    try:
        with connections[alias].cursor() as cursor:
            return table in connections[alias].introspection.table_names(cursor)
    except DatabaseError:
        return True  # an unreachable database is reported by the check itself


@register(Tags.database)
def dspy_artifact_promoted(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """LLM_DSPY_RUNTIME_MODE=shadow|active must name a stored, promoted artifact of the
    configured program (`trading.E001`); the settings already refuse a missing or malformed
    hash. Skipped on a database without the artifact table (before the first `migrate`)."""
    if settings.LLM_DSPY_RUNTIME_MODE == "disabled" or not databases:
        return []
    if not all(_artifact_table_exists(alias) for alias in databases):
        return []
    error = dspy_artifact_error()
    return [error] if error is not None else []


def dspy_worker_guard(**kwargs: Any) -> None:
    """Celery `worker_init`: a worker does not start while the configured DSPy artifact cannot
    run (SystemExit is not swallowed by Celery's signal dispatch, so the worker exits)."""
    error = dspy_artifact_error()
    if error is not None:
        hint = f" ({error.hint})" if error.hint else ""
        raise SystemExit(f"torghut worker refuses to start: {error.msg}{hint} [{error.id}]")
