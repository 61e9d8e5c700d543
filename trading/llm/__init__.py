"""LLM trade review (docs/compatibility.md#review-contract) and the DSPy review program and its
lanes (docs/compatibility.md#dspy-contract).

- `config`: the settings and flags one review sees, read once per review.
- `provider`: the one adapter for OpenAI-compatible chat completions (OpenAI, Jangar,
  self-hosted), with timeouts, fallback and error classification.
- `schema`: the response contract and its validation.
- `policy`: the deterministic rules over a verdict: rollout posture, fail modes, quality
  guardrails, clamping (never above the deterministic size).
- `engine`: one review, from the stored snapshot to an outcome (legacy and DSPy paths).
- `dspy` (package): the DSPy program, its LM adapter, its runtime, its artifacts and metrics
  gates, and its AgentRun payloads; the dataset/compile/eval/promote lanes are
  `trading.services.dspy_lanes`.
"""
