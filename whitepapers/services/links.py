"""Links from a whitepaper run to the research candidates it inspired
(`WhitepaperRunCandidateLink`).

Written by the agent's finalize (`whitepapers.services.finalize`, source `finalize`) and by the
operators' link form (`ops.admin_provenance`, source `admin`, which first checks that each
candidate exists). Linking is idempotent: a candidate already linked to the run keeps its first
row; only the new ones are written. The run is locked while the links are written, so two
writers of the same run never both insert.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.db import transaction

from whitepapers.models import (
    CANDIDATE_ID_PATTERN,
    CANDIDATE_LINKS_PER_REQUEST_MAX,
    CandidateLinkSource,
    WhitepaperAnalysisRun,
    WhitepaperRunCandidateLink,
)

_CANDIDATE_ID = re.compile(CANDIDATE_ID_PATTERN)


class CandidateLinkError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def candidate_ids_check(candidate_ids: Sequence[object]) -> list[str]:
    """The ids in order without repeats; raises `CandidateLinkError` for a list over the limit
    or an id that is not a string of the research lane's shape."""
    if len(candidate_ids) > CANDIDATE_LINKS_PER_REQUEST_MAX:
        raise CandidateLinkError(
            "too_many_candidates",
            f"at most {CANDIDATE_LINKS_PER_REQUEST_MAX} candidate ids at a time",
        )
    out: list[str] = []
    for value in candidate_ids:
        if not isinstance(value, str) or not _CANDIDATE_ID.fullmatch(value):
            raise CandidateLinkError(
                "invalid_candidate_id", f"{str(value)[:80]!r} is not a candidate id (cand-<12 hex>)"
            )
        if value not in out:
            out.append(value)
    return out


def run_candidates_link(
    *, run_id: str, candidate_ids: Sequence[object], source: str, linked_by: str
) -> list[str]:
    """Link `candidate_ids` to the run; returns the ids newly linked (in the order given).
    Raises `CandidateLinkError` before writing anything, or `WhitepaperAnalysisRun.DoesNotExist`."""
    ids = candidate_ids_check(candidate_ids)
    with transaction.atomic():
        run = WhitepaperAnalysisRun.objects.select_for_update().get(run_id=run_id)
        return candidate_links_write(run=run, candidate_ids=ids, source=source, linked_by=linked_by)


def candidate_links_write(
    *, run: WhitepaperAnalysisRun, candidate_ids: Sequence[object], source: str, linked_by: str
) -> list[str]:
    """`run_candidates_link` for a run its caller has locked (finalize, in its transaction)."""
    ids = candidate_ids_check(candidate_ids)
    if source not in CandidateLinkSource.values:
        raise CandidateLinkError("invalid_source", f"unknown link source {source!r}")
    if not linked_by.strip():
        raise CandidateLinkError("linked_by_required", "a link names who made it")
    existing = set(
        WhitepaperRunCandidateLink.objects.filter(run=run).values_list("candidate_id", flat=True)
    )
    new = [cid for cid in ids if cid not in existing]
    WhitepaperRunCandidateLink.objects.bulk_create(
        [
            WhitepaperRunCandidateLink(
                run=run, candidate_id=cid, source=source, linked_by=linked_by[:200]
            )
            for cid in new
        ]
    )
    return new
