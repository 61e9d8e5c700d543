"""The Jangar AgentRun adapter lives in `torghut_site.jangar` (shared with the DSPy lanes)."""

from __future__ import annotations

from torghut_site.jangar import JangarError, SubmittedAgentRun, agentrun_submit

__all__ = ["JangarError", "SubmittedAgentRun", "agentrun_submit"]
