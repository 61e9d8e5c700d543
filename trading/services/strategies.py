"""Strategy changes made by people in the admin: checked, then written with an audit event.

The catalog loader (`trading.services.catalog`) and the autonomy promotion write strategy rows
through their own services; this module is for a person's add, change or delete:

1. the actor is an active staff user;
2. adding or deleting a strategy, or changing one of its `RISK_FIELDS` (what is traded, on which
   lanes, how much), needs `trading.promote_strategy`;
3. when such a change concerns a configured live lane, it also needs
   `trading.change_live_strategy` and, for each live lane concerned, a two-person live approval
   in force (`trading.selectors.safety.live_approval_active`), superusers included. A live lane
   is concerned when the strategy's `account_labels`, before or after the change, name it; an
   empty `account_labels` is every lane (`trading.services.cycle.enabled_strategies`);
4. a change of what the strategy trades, where or how much (a `RISK_FIELDS` field but
   `enabled`) clears the row's promotion provenance (`promotion_ref`, `promotion_candidate_id`):
   the row is a person's configuration from then on, and its later decisions name no promotion.
   Turning a promoted strategy off and on again keeps it;
5. the row and one `SafetyEvent` (`strategy_created`, `strategy_changed`, `strategy_deleted`)
   naming the actor, the changed fields before and after, and the live lanes with the approval
   each used, are written in one transaction, under a lock of the row.

The permissions are the trading app's own: autonomy's `autonomy.approve_promotion` and
`approve_live_promotion` approve a research candidate, whose promotion then writes the row
through the autonomy service; trading sits below autonomy and names only its own permissions.
An operator group that promotes usually holds both.

A refusal raises `StrategyChangeError` (a stable `code`, a message saying why) before anything
is written. `strategy_change_check` runs the same checks without writing (the admin form).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from trading.lanes import live_lane_labels
from trading.models import SafetyEvent, Strategy
from trading.models.safety import SafetyEventKind
from trading.selectors.safety import live_approval_active

Actor = AbstractBaseUser | AnonymousUser | None

PROMOTE_PERMISSION = "trading.promote_strategy"
LIVE_PERMISSION = "trading.change_live_strategy"
# what is traded, where, when and how much; `name` too, since the autonomy promotion finds,
# restores and disables its strategy by name
RISK_FIELDS = (
    "name",
    "enabled",
    "strategy_type",
    "version",
    "base_timeframe",
    "universe_symbols",
    "account_labels",
    "params",
    "priority",
    "max_position_pct_equity",
    "max_notional_per_trade",
)
EDITABLE_FIELDS = (*RISK_FIELDS, "description")
# changing one of these makes the row no longer the configuration a promotion applied
PROVENANCE_CLEARING_FIELDS = tuple(name for name in RISK_FIELDS if name != "enabled")
_PROVENANCE_FIELDS = ("promotion_ref", "promotion_candidate_id")
_LIST_FIELDS = ("universe_symbols", "account_labels")


class StrategyChangeError(Exception):
    """A refused strategy change. Codes: `not_staff`, `permission_denied`, `not_editable`,
    `invalid_value`, `not_found`, `live_permission_denied`, `live_approval_missing`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class StrategyChangePlan:
    """What a change does: the fields it changes (before, after) and the live lanes it concerns
    with the id of the live approval in force for each."""

    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changed: tuple[str, ...]
    live_approvals: dict[str, int] = field(default_factory=dict)


def _staff_actor(actor: Actor) -> AbstractBaseUser:
    if not isinstance(actor, AbstractBaseUser):
        raise StrategyChangeError("not_staff", "a signed-in active staff user is required")
    if not actor.is_active or not getattr(actor, "is_staff", False):
        raise StrategyChangeError(
            "not_staff", f"{actor.get_username()} is not an active staff user"
        )
    return actor


def _has_perm(user: AbstractBaseUser, permission: str) -> bool:
    has_perm = getattr(user, "has_perm", None)
    return bool(has_perm is not None and has_perm(permission))


def _values(strategy: Strategy) -> dict[str, Any]:
    return {name: getattr(strategy, name) for name in EDITABLE_FIELDS}


def _check_values(changes: Mapping[str, Any]) -> None:
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise StrategyChangeError(
            "not_editable", f"these strategy fields are not edited by people: {unknown}"
        )
    for name in _LIST_FIELDS:
        value = changes.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise StrategyChangeError("invalid_value", f"{name} must be a list of strings")
    if not isinstance(changes.get("params", {}), dict):
        raise StrategyChangeError("invalid_value", "params must be a JSON object")


def _live_labels(account_labels: object) -> set[str]:
    """The configured live lanes a strategy with these `account_labels` trades on; anything
    but a non-empty list of strings (empty, or a stored value of another shape) counts as
    every lane."""
    live = set(live_lane_labels())
    if not isinstance(account_labels, list) or not account_labels:
        return live
    return live & {label for label in account_labels if isinstance(label, str)}


def _check_live(user: AbstractBaseUser, labels: set[str]) -> dict[str, int]:
    """The approval in force for each live lane in `labels`, if the user may change them."""
    if not labels:
        return {}
    name = user.get_username()
    if not _has_perm(user, LIVE_PERMISSION):
        raise StrategyChangeError(
            "live_permission_denied",
            f"{name} lacks the permission {LIVE_PERMISSION}: this strategy trades on the live "
            f"lane(s) {', '.join(sorted(labels))}",
        )
    approvals = {}
    for label in sorted(labels):
        approval = live_approval_active(label)
        if approval is None:
            raise StrategyChangeError(
                "live_approval_missing",
                f"live lane {label} has no two-person live approval in force: request one "
                "and have another person approve it before changing a strategy that trades on it",
            )
        approvals[label] = approval.pk
    return approvals


def _plan(
    user: AbstractBaseUser, before: dict[str, Any] | None, changes: Mapping[str, Any] | None
) -> StrategyChangePlan:
    """Check a change (`before` None: an add; `changes` None: a delete) and describe it."""
    if changes is not None:
        _check_values(changes)
    after = None
    if changes is not None:
        after = {**before, **changes} if before is not None else _values(Strategy(**changes))
    if before is None or after is None:  # an add or a delete: every field
        changed = tuple(EDITABLE_FIELDS)
    else:
        changed = tuple(name for name in EDITABLE_FIELDS if before[name] != after[name])
    if not (set(changed) & set(RISK_FIELDS)):
        return StrategyChangePlan(before, after, changed)
    if not _has_perm(user, PROMOTE_PERMISSION):
        raise StrategyChangeError(
            "permission_denied",
            f"{user.get_username()} lacks the permission {PROMOTE_PERMISSION}: adding or "
            f"deleting a strategy or changing {', '.join(RISK_FIELDS)} is a promotion",
        )
    labels = set()
    for values in (before, after):
        if values is not None:
            labels |= _live_labels(values["account_labels"])
    return StrategyChangePlan(before, after, changed, _check_live(user, labels))


def strategy_change_check(
    *, strategy_id: int | None, changes: Mapping[str, Any], actor: Actor
) -> StrategyChangePlan:
    """Whether `actor` may make this change (raises `StrategyChangeError`); writes nothing."""
    user = _staff_actor(actor)
    before = None
    if strategy_id is not None:
        row = Strategy.objects.filter(pk=strategy_id).first()
        if row is None:
            raise StrategyChangeError("not_found", f"no strategy {strategy_id}")
        before = _values(row)
    return _plan(user, before, changes)


def _locked(strategy_id: int) -> Strategy:
    row = (
        Strategy.objects.select_for_update(of=("self",))
        .filter(pk=strategy_id)
        .order_by("pk")
        .first()
    )
    if row is None:
        raise StrategyChangeError("not_found", f"no strategy {strategy_id}")
    return row


def _as_json(values: Mapping[str, Any] | None, names: tuple[str, ...]) -> dict[str, Any] | None:
    if values is None:
        return None
    return {n: str(values[n]) if isinstance(values[n], Decimal) else values[n] for n in names}


def _audit(
    kind: SafetyEventKind,
    strategy: Strategy,
    plan: StrategyChangePlan,
    user: AbstractBaseUser,
    after: dict[str, Any] | None,
    cleared_promotion_ref: int | None = None,
) -> None:
    """One event: the changed fields before and `after` (as stored), the live approvals used,
    and the promotion provenance the change cleared, if any."""
    details: dict[str, Any] = {
        "strategy_id": strategy.pk,
        "strategy": strategy.name,
        "before": _as_json(plan.before, plan.changed),
        "after": _as_json(after, plan.changed),
        "live_approvals": plan.live_approvals,
    }
    if cleared_promotion_ref is not None:
        details["cleared_promotion_ref"] = cleared_promotion_ref
    SafetyEvent.objects.create(
        kind=kind, actor_id=user.pk, actor_label=user.get_username(), details=details
    )


def strategy_admin_change(
    *, strategy_id: int | None, changes: Mapping[str, Any], actor: Actor
) -> Strategy:
    """Add (`strategy_id` None) or change a strategy as `actor`, audited; an unchanged row is
    neither written nor audited."""
    user = _staff_actor(actor)
    with transaction.atomic():
        row = None if strategy_id is None else _locked(strategy_id)
        plan = _plan(user, None if row is None else _values(row), changes)
        cleared: int | None = None
        if row is None:
            kind = SafetyEventKind.STRATEGY_CREATED
            row = Strategy.objects.create(**changes)
        elif plan.changed:
            kind = SafetyEventKind.STRATEGY_CHANGED
            for name in plan.changed:
                setattr(row, name, changes[name])
            written = [*plan.changed, "updated_at"]
            if set(plan.changed) & set(PROVENANCE_CLEARING_FIELDS):
                cleared = row.promotion_ref
                row.promotion_ref, row.promotion_candidate_id = None, ""
                written.extend(_PROVENANCE_FIELDS)
            row.save(update_fields=written)
        else:
            return row
        row.refresh_from_db()
        _audit(kind, row, plan, user, _values(row), cleared)
    return row


def strategy_admin_delete(*, strategy_id: int, actor: Actor) -> None:
    """Delete a strategy as `actor`, audited (a strategy with decisions is protected)."""
    user = _staff_actor(actor)
    with transaction.atomic():
        row = _locked(strategy_id)
        plan = _plan(user, _values(row), None)
        _audit(SafetyEventKind.STRATEGY_DELETED, row, plan, user, None)
        row.delete()
