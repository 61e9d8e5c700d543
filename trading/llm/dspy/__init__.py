"""The DSPy review program (docs/compatibility.md#dspy-contract), one module per concern.

- `program`: `trade-review-committee-v1`, the typed signature and the program builders.
- `lm`: DSPy's language model over torghut's provider adapter.
- `runtime`: running the promoted program for one review (shadow/active).
- `artifacts`: the lanes' canonical JSON artifacts, their hashes and the metric policy gate.
- `agentrun`: a lane as a Codex AgentRun payload on Jangar.

This `__init__` imports nothing: `program` and `lm` import the `dspy` library (about a second),
which the web process and the trade cycle never load.
"""
