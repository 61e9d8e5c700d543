"""LLM review fixtures: the OpenAI-compatible test server and settings that enforce reviews."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from tests.servers.llm_server import LLMServer
from trading.tests.cycle.conftest import (  # noqa: F401  (fixtures shared with the cycle tests)
    macd_strategy,
    replay_settings,
    signals_file,
)


@pytest.fixture(scope="session")
def llm_server_session() -> Iterator[LLMServer]:
    server = LLMServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def llm_server(llm_server_session: LLMServer) -> Iterator[LLMServer]:
    llm_server_session.reset()
    yield llm_server_session
    llm_server_session.reset()


@pytest.fixture
def llm_settings(settings, llm_server):
    """LLM review on, enforced (stage3 with its governance evidence), against the test server."""
    from trading.llm.dspy import runtime as dspy_runtime

    settings.LLM_ENABLED = True
    settings.LLM_PROVIDER = "self_hosted"
    settings.LLM_MODEL = "test-model"
    settings.LLM_SELF_HOSTED_BASE_URL = llm_server.base_url
    settings.LLM_SELF_HOSTED_MODEL = "test-model"
    settings.LLM_SELF_HOSTED_API_KEY = "local"
    settings.JANGAR_BASE_URL = ""
    settings.LLM_TIMEOUT_SECONDS = 2.0
    settings.LLM_REVIEW_DEADLINE_SECONDS = 30
    settings.LLM_ROLLOUT_STAGE = "stage3"
    settings.LLM_SHADOW_MODE = False
    settings.LLM_EVALUATION_REPORT = "eval-2026-03"
    settings.LLM_EFFECTIVE_CHALLENGE_ID = "challenge-7"
    settings.LLM_SHADOW_COMPLETED_AT = "2026-02-01T00:00:00Z"
    settings.LLM_MODEL_VERSION_LOCK = "test-model"
    settings.LLM_FAIL_MODE = "veto"
    settings.LLM_FAIL_MODE_ENFORCEMENT = "strict_veto"
    settings.LLM_ADJUSTMENT_ALLOWED = False
    settings.LLM_ADJUSTMENT_APPROVED = False
    settings.LLM_CIRCUIT_MAX_ERRORS = 3
    settings.LLM_CIRCUIT_WINDOW_SECONDS = 300
    settings.LLM_CIRCUIT_COOLDOWN_SECONDS = 600
    settings.LLM_DSPY_RUNTIME_MODE = "disabled"
    settings.LLM_DSPY_ARTIFACT_HASH = ""
    # the seeded decisions start 2026-03-02: all of them are after test-model's training data
    settings.LLM_MODEL_TRAINING_CUTOFFS = {"test-model": date(2026, 3, 1)}
    # the single legacy call; the committee's tests (test_review_committee.py) switch it on
    settings.LLM_COMMITTEE_ENABLED = False
    settings.LLM_COMMITTEE_FAIL_CLOSED_VERDICT = "veto"
    dspy_runtime._cache.clear()
    yield settings
    dspy_runtime._cache.clear()


@pytest.fixture
def artifacts_dir(settings, tmp_path):
    """Object storage in a temporary directory (the filesystem backend)."""
    root = tmp_path / "artifacts"
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    return root


@pytest.fixture
def jangar(settings) -> Iterator[Any]:
    from tests.servers.jangar_server import JangarServer

    server = JangarServer()
    server.start()
    settings.JANGAR_BASE_URL = server.url
    settings.JANGAR_API_KEY = ""
    settings.WHITEPAPER_AGENTRUN_TIMEOUT_SECONDS = 0.5
    settings.WHITEPAPER_AGENTRUN_MAX_ATTEMPTS = 3
    settings.WHITEPAPER_AGENTRUN_BACKOFF_SECONDS = 0.01
    yield server
    server.stop()


@pytest.fixture
def labelled(db) -> dict[str, str]:
    """20 stored decisions with known outcomes (see `data.seed_decisions`)."""
    from trading.models import Strategy
    from trading.tests.llm.data import LABELS, seed_decisions

    strategy = Strategy.objects.create(
        name="seeded", strategy_type="legacy_macd_rsi", enabled=False
    )
    return seed_decisions(strategy, LABELS)


@pytest.fixture
def approver(db):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("risk-officer", password="pw-approver-123")
    user.user_permissions.add(Permission.objects.get(codename="change_llmdspyworkflowartifact"))
    return get_user_model().objects.get(pk=user.pk)  # reload: permissions are cached


@pytest.fixture
def promoted(labelled, llm_settings, llm_server, artifacts_dir, approver) -> str:
    """A compiled, evaluated (pass) and promoted artifact; returns its hash."""
    from trading.services.dspy_lanes import (
        dspy_compile,
        dspy_dataset_build,
        dspy_evaluate,
        dspy_promote,
    )
    from trading.tests.llm.data import perfect_reviewer

    llm_server.responder = perfect_reviewer(labelled)
    dataset = dspy_dataset_build()
    compiled = dspy_compile(dataset_hash=dataset.dataset_hash, optimizer="labeled-fewshot")
    evaluation = dspy_evaluate(artifact_hash=compiled.artifact_hash)
    dspy_promote(
        artifact_hash=compiled.artifact_hash,
        eval_hash=evaluation.eval_hash,
        target="shadow",
        approver=approver,
        approval_token_ref="CHG-1",
    )
    llm_server.reset()
    return compiled.artifact_hash
