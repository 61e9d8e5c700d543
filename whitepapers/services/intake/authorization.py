"""Who may ask (the author association or a maintainer's trigger label) and for which branches,
by the settings' allow-lists."""

from __future__ import annotations

from django.conf import settings

from whitepapers.github import (
    Branches,
    IssueEvent,
    Marker,
    actor_authorization,
    branches_resolve,
)


def issue_authorization(issue: IssueEvent) -> str:
    return actor_authorization(
        issue,
        associations=settings.WHITEPAPER_ALLOWED_AUTHOR_ASSOCIATIONS,
        trigger_label=settings.WHITEPAPER_TRIGGER_LABEL,
    )


def marker_branches(marker: Marker) -> Branches:
    return branches_resolve(
        marker,
        default_base=settings.WHITEPAPER_DEFAULT_BASE_BRANCH,
        allowed_bases=settings.WHITEPAPER_ALLOWED_BASE_BRANCHES,
    )
