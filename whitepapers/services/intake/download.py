"""The PDF download under the outbound policy, and the run that already analysed the same file."""

from __future__ import annotations

from whitepapers.models import ParseStatus, RunStatus, WhitepaperAnalysisRun
from whitepapers.pdf import DownloadedPdf, pdf_download, pdf_fetch_policy


def attachment_download(url: str) -> DownloadedPdf:
    # the issue body chose `url`: the outbound policy decides what it may reach, and the token
    return pdf_download(url, policy=pdf_fetch_policy())


_REPLAY_PREFERENCE: dict[str, int] = {
    RunStatus.COMPLETED: 0,
    RunStatus.AGENTRUN_DISPATCHED: 1,
    RunStatus.QUEUED: 2,
}


def file_replay(sha256: str, *, exclude_run_id: str) -> WhitepaperAnalysisRun | None:
    candidates = list(
        WhitepaperAnalysisRun.objects.select_related("document")
        .filter(
            document_version__checksum_sha256=sha256,
            document_version__parse_status=ParseStatus.STORED,
        )
        .exclude(run_id=exclude_run_id)
        .order_by("created_at")
    )
    if not candidates:
        return None
    return min(candidates, key=lambda r: _REPLAY_PREFERENCE.get(r.status, 3))
