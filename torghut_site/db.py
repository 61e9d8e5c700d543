"""Model helpers shared by the apps."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


def choices_constraint(
    field: str, choices: type[models.TextChoices], name: str
) -> models.CheckConstraint:
    """`choices=` alone does not constrain the data; this CHECK does."""
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)
