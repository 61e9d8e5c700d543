from trading.models.accounts import (
    AccountLane,
    LaneState,
    LiveApproval,
    LiveApprovalStatus,
    PositionSnapshot,
    TradeCursor,
)
from trading.models.decisions import (
    DecisionStatus,
    TradeDecision,
    TradeDecisionTransition,
)
from trading.models.executions import Execution, ExecutionTcaMetric, ExecutionTransition
from trading.models.fill_checks import FillCheck, FillVerdict
from trading.models.llm import (
    LLMCircuitBreaker,
    LLMDecisionReview,
    LLMDspyWorkflowArtifact,
    LLMStabilityProbe,
)
from trading.models.llm_committee import LLMCommitteeVote
from trading.models.llm_spend import LLMSpendDay, LLMSpendReservation, ReservationStatus
from trading.models.notifications import Notification, NotificationStatus
from trading.models.safety import Incident, SafetyEvent, SafetyState
from trading.models.signals import TaSignal
from trading.models.strategies import Strategy
from trading.models.streams import TradeStreamState

__all__ = [
    "AccountLane",
    "DecisionStatus",
    "Execution",
    "ExecutionTcaMetric",
    "ExecutionTransition",
    "FillCheck",
    "FillVerdict",
    "Incident",
    "LLMCircuitBreaker",
    "LLMCommitteeVote",
    "LLMDecisionReview",
    "LLMDspyWorkflowArtifact",
    "LLMSpendDay",
    "LLMSpendReservation",
    "LLMStabilityProbe",
    "LaneState",
    "LiveApproval",
    "LiveApprovalStatus",
    "Notification",
    "NotificationStatus",
    "PositionSnapshot",
    "ReservationStatus",
    "SafetyEvent",
    "SafetyState",
    "Strategy",
    "TaSignal",
    "TradeCursor",
    "TradeDecision",
    "TradeDecisionTransition",
    "TradeStreamState",
]
