"""The DSPy lanes: build a labelled dataset, compile, evaluate, promote, and submit a lane as an
AgentRun. Each lane stores its canonical JSON file in object storage (content-addressed keys) and
one `llm_dspy_workflow_artifacts` row keyed by `run_key`; running a lane again on the same inputs
finds the same hashes, the same keys and the same row.
"""

from trading.services.dspy_lanes.agentrun import dspy_agentrun_submit
from trading.services.dspy_lanes.common import DspyLaneError
from trading.services.dspy_lanes.compile import dspy_compile, labelled_fields
from trading.services.dspy_lanes.dataset import dspy_dataset_build
from trading.services.dspy_lanes.evaluate import dspy_evaluate
from trading.services.dspy_lanes.optimizers import OPTIMIZERS
from trading.services.dspy_lanes.promote import dspy_promote

__all__ = [
    "OPTIMIZERS",
    "DspyLaneError",
    "dspy_agentrun_submit",
    "dspy_compile",
    "dspy_dataset_build",
    "dspy_evaluate",
    "dspy_promote",
    "labelled_fields",
]
