"""Each committee role's vote of one review (trading/llm/committee.py): written with the review's
completion, in the same transaction, only when that completion wins its compare-and-set."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from torghut_site.db import choices_constraint
from trading.models.llm import LLMDecisionReview


class CommitteeRole(models.TextChoices):
    RESEARCHER = "researcher", "researcher"
    RISK_CRITIC = "risk_critic", "risk critic"
    EXECUTION_CRITIC = "execution_critic", "execution critic"
    POLICY_JUDGE = "policy_judge", "policy judge"


class CommitteeVerdict(models.TextChoices):
    APPROVE = "approve", "approve"
    VETO = "veto", "veto"
    ADJUST = "adjust", "adjust"
    ABSTAIN = "abstain", "abstain"
    ESCALATE = "escalate", "escalate"


class LLMCommitteeVote(models.Model):
    """One role's vote. A role that gave no usable answer holds the fail-closed verdict
    (LLM_COMMITTEE_FAIL_CLOSED_VERDICT) and its `error`; a DSPy program's committee member has
    no call of its own (no tokens, latency or response hash)."""

    review = models.ForeignKey(
        LLMDecisionReview, on_delete=models.CASCADE, related_name="committee_votes"
    )
    role = models.CharField(max_length=20, choices=CommitteeRole.choices)
    verdict = models.CharField(max_length=12, choices=CommitteeVerdict.choices)
    confidence = models.FloatField()
    uncertainty_band = models.CharField(max_length=8)
    rationale_short = models.CharField(max_length=280)
    required_checks = models.JSONField(default=list, blank=True)
    risk_flags = models.JSONField(default=list, blank=True)
    adjusted_qty = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    adjusted_order_type = models.CharField(max_length=16, blank=True, default="")
    limit_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    tokens_prompt = models.PositiveIntegerField(default=0)
    tokens_completion = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    response_sha256 = models.CharField(
        max_length=64, blank=True, default="", help_text="sha256 of the role's raw answer"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "LLM committee vote"
        verbose_name_plural = "LLM committee votes"
        db_table = "llm_committee_votes"
        ordering = ["review_id", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["review", "role"], name="llm_committee_vote_unique"),
            choices_constraint("role", CommitteeRole, "llm_committee_vote_role_valid"),
            choices_constraint("verdict", CommitteeVerdict, "llm_committee_vote_verdict_valid"),
            models.CheckConstraint(
                condition=Q(uncertainty_band__in=("low", "medium", "high")),
                name="llm_committee_vote_band_valid",
            ),
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1),
                name="llm_committee_vote_confidence_range",
            ),
        ]

    def __str__(self) -> str:
        return f"review {self.review_id} {self.role}: {self.verdict}"
