"""The trial registry (`autonomy.models.ResearchTrial`; what a trial is: `autonomy.trials`).

`trials_record` writes trials in one statement: a new key is inserted, a known key only has its
`last_seen_at` moved (its numbers are a function of the key's inputs, so they are never
rewritten). `autonomy.selectors.trial_history` reads them back for the overfitting evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from autonomy.models import ResearchTrial
from autonomy.trials import Trial


def _when(text: str) -> datetime:
    parsed = parse_datetime(text)
    if parsed is None:
        raise ValueError(f"not an ISO time: {text!r}")
    return parsed


def trials_record(*, trials: Sequence[Trial], now: datetime | None = None) -> int:
    """Record `trials` (idempotent by key); returns how many were new."""
    if not trials:
        return 0
    at = now or timezone.now()
    unique = {t.key: t for t in trials}
    known = set(
        ResearchTrial.objects.filter(trial_key__in=list(unique)).values_list("trial_key", flat=True)
    )
    rows = [
        ResearchTrial(
            trial_key=key,
            family=t.family,
            strategy_name=t.strategy_name,
            strategy_version=t.strategy_version,
            params=dict(t.params),
            params_sha256=t.params_sha256,
            config_sha256=t.config_sha256,
            dataset_sha256=t.window.dataset_sha256,
            window_key=t.window.key,
            window_start_row=t.window.start_row,
            window_stop_row=t.window.stop_row,
            window_from=_when(t.window.window_from),
            window_to=_when(t.window.window_to),
            periods=int(t.total_sums()[0]),
            sharpe_ratio=t.sharpe(),
            net_pnl=t.net_pnl,
            trade_count=t.trade_count,
            block_sums=[list(row) for row in t.sums],
            source=t.source,
            source_ref=t.source_ref,
            first_seen_at=at,
            last_seen_at=at,
        )
        for key, t in sorted(unique.items())
    ]
    # a concurrent writer of the same key wins the insert; ours only moves last_seen_at
    ResearchTrial.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["trial_key"],
        update_fields=["last_seen_at"],
    )
    return len(unique) - len(known)
