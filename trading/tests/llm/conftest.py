"""LLM review fixtures: the OpenAI-compatible test server and settings that enforce reviews."""

from __future__ import annotations

from collections.abc import Iterator

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
    from trading.llm import dspy_runtime

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
    dspy_runtime._cache.clear()
    yield settings
    dspy_runtime._cache.clear()
