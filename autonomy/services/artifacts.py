"""Write-once research evidence: a run's artifacts, its manifest, and their replay.

Every artifact stored for a run is written once: the files under the output dir and the objects
under `autonomy/runs/<run_id>/…` (the drift documents under `…/drift/` too,
`autonomy.services.governance`). A path that already holds the same bytes is left as it is; one
that holds different bytes is never overwritten: `ArtifactConflictError` is raised and an
`ArtifactConflict` row recorded. The check and the write are one step where the backend offers it
(`torghut_site.storage.object_put_once`: a conditional S3 PUT, a hard link on a filesystem), and
the stored bytes are read back and compared after every write.

The manifest (`manifest.json`, written after the artifacts, to the output dir and to object
storage) holds the run id, what the id covers (`RunInputs`), the outcome's summary and every
artifact's path, sha256 and size; its sha256 is pinned in the ledger row. A run whose id is
already in the ledger is replayed from the stored manifest: every object is read and must match
its sha256 (a mismatch is refused, never repaired); when the manifest or an object is missing,
or the store cannot be reached, the lane is computed again and must reproduce the recorded bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autonomy.engine.artifacts import OBJECT_PREFIX, artifact_bytes
from autonomy.metrics import ARTIFACT_CONFLICTS
from autonomy.models import ArtifactConflict, ArtifactConflictReason
from autonomy.research_lane import LaneOutcome
from autonomy.run_inputs import RunInputs
from torghut_site.storage import (
    ObjectConflict,
    ObjectStoreError,
    file_put_once,
    object_get,
    object_put_once,
)

MANIFEST = "manifest.json"


class ArtifactConflictError(Exception):
    """A write-once artifact would change (or a stored one no longer matches its run's record);
    nothing was overwritten."""


@dataclass(frozen=True)
class Evidence:
    entries: dict[str, dict[str, Any]]  # path -> {sha256, size, path?, uri? | storage_error?}
    manifest: dict[str, Any]
    manifest_sha256: str
    values: dict[str, Any] = field(default_factory=dict)  # a replay's artifacts, parsed


def object_key(run_id: str, path: str) -> str:
    return f"{OBJECT_PREFIX}/{run_id}/{path}"


def conflict_record(
    *,
    run_id: str,
    path: str,
    location: str,
    reason: ArtifactConflictReason,
    expected_sha256: str,
    found_sha256: str,
    detail: str,
) -> ArtifactConflictError:
    """Record a refused write or replay; the error to raise."""
    ArtifactConflict.objects.create(
        run_id=run_id,
        path=path[:512],
        location=location[:1024],
        reason=reason,
        expected_sha256=expected_sha256,
        found_sha256=found_sha256,
        detail=detail,
    )
    ARTIFACT_CONFLICTS.labels(reason=reason.value).inc()
    return ArtifactConflictError(f"{reason.value}: run {run_id}, {path}: {detail}")


def _refused(run_id: str, path: str, exc: ObjectConflict) -> ArtifactConflictError:
    return conflict_record(
        run_id=run_id,
        path=path,
        location=exc.where,
        reason=ArtifactConflictReason.WRITE_CONFLICT,
        expected_sha256=exc.expected_sha256,
        found_sha256=exc.found_sha256,
        detail=exc.detail,
    )


def artifact_put(*, run_id: str, path: str, data: bytes, output_dir: Path | None) -> dict[str, Any]:
    """Write one artifact once, to `output_dir` (when given) and to object storage. A store that
    fails (unreachable, refused) is recorded in the entry as `storage_error`, not raised: the
    output dir and the ledger still hold the run. Different bytes already there: raised."""
    entry: dict[str, Any] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    if output_dir is not None:
        target = output_dir / path
        try:
            file_put_once(target, data)
        except ObjectConflict as exc:
            raise _refused(run_id, path, exc) from exc
        entry["path"] = str(target)
    content_type = "application/yaml" if path.endswith(".yaml") else "application/json"
    try:
        entry["uri"] = object_put_once(
            object_key(run_id, path), data, content_type=content_type
        ).uri
    except ObjectConflict as exc:
        raise _refused(run_id, path, exc) from exc
    except ObjectStoreError as exc:
        entry["storage_error"] = exc.reason
    return entry


def output_dir_check(*, output_dir: Path | None, run_id: str) -> None:
    """Refuse, before anything is computed or recorded, an output dir that holds another run."""
    if output_dir is None:
        return
    manifest = output_dir / MANIFEST
    try:
        held = json.loads(manifest.read_bytes()).get("run_id")
    except FileNotFoundError:
        return
    except (OSError, ValueError, AttributeError) as exc:
        raise ArtifactConflictError(f"{manifest} cannot be read ({exc})") from exc
    if held != run_id:
        raise ArtifactConflictError(
            f"{output_dir} holds the artifacts of run {held}; run {run_id} has other inputs and "
            "artifacts are written once: give it another output dir (--output-dir)"
        )


def _manifest(
    outcome: LaneOutcome, inputs: RunInputs, entries: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    return {
        "run_id": outcome.run_id,
        "inputs": inputs.as_dict(),
        "outcome": {
            "status": outcome.status,
            "candidate_id": outcome.candidate_id,
            "candidate_hash": outcome.candidate_hash,
            "promotion_target": outcome.promotion_target,
            "recommended_mode": outcome.recommended_mode,
            "recommendation": outcome.recommendation,
            "gate_report_trace_id": outcome.gate_trace_id,
            "recommendation_trace_id": outcome.recommendation_trace_id,
        },
        "artifacts": {
            path: {"sha256": e["sha256"], "size": e["size"]} for path, e in sorted(entries.items())
        },
    }


def evidence_write(
    *,
    outcome: LaneOutcome,
    inputs: RunInputs,
    output_dir: Path | None,
    recorded: Mapping[str, str],
) -> Evidence:
    """Write every artifact of `outcome`, then its manifest, once. `recorded`: path -> sha256
    the ledger already holds for this run; a recomputation must reproduce them."""
    entries: dict[str, dict[str, Any]] = {}
    for path, value in sorted(outcome.artifacts.items()):
        data = artifact_bytes(value)
        content_sha = hashlib.sha256(data).hexdigest()
        if recorded.get(path, content_sha) != content_sha:
            raise conflict_record(
                run_id=outcome.run_id,
                path=path,
                location="ledger",
                reason=ArtifactConflictReason.WRITE_CONFLICT,
                expected_sha256=recorded[path],
                found_sha256=content_sha,
                detail="recomputed bytes differ from the ledger's record of this run "
                "(a result changed without an ENGINE_VERSION bump?); nothing written",
            )
        entries[path] = artifact_put(
            run_id=outcome.run_id, path=path, data=data, output_dir=output_dir
        )
    manifest = _manifest(outcome, inputs, entries)
    data = artifact_bytes(manifest)
    artifact_put(run_id=outcome.run_id, path=MANIFEST, data=data, output_dir=output_dir)
    return Evidence(
        entries=entries, manifest=manifest, manifest_sha256=hashlib.sha256(data).hexdigest()
    )


def _stored(run_id: str, path: str) -> bytes | None:
    try:
        return object_get(object_key(run_id, path))
    except ObjectStoreError:
        return None


def _mismatch(
    run_id: str, path: str, reason: ArtifactConflictReason, expected: str, found: str, detail: str
) -> ArtifactConflictError:
    return conflict_record(
        run_id=run_id,
        path=path,
        location=object_key(run_id, path),
        reason=reason,
        expected_sha256=expected,
        found_sha256=found,
        detail=detail,
    )


def evidence_replay(
    *, run_id: str, inputs: RunInputs, manifest_sha256: str, output_dir: Path | None
) -> Evidence | None:
    """The stored run, verified, copied to `output_dir`; None when its manifest or an object is
    missing or the store cannot be read (the caller computes it again). A stored manifest or
    object that does not match its record raises; nothing is rewritten."""
    data = _stored(run_id, MANIFEST)
    if data is None:
        return None
    found = hashlib.sha256(data).hexdigest()
    if manifest_sha256 and found != manifest_sha256:
        raise _mismatch(
            run_id,
            MANIFEST,
            ArtifactConflictReason.MANIFEST_MISMATCH,
            manifest_sha256,
            found,
            "the stored manifest is not the one the ledger recorded; refusing to replay it",
        )
    manifest = json.loads(data)
    if manifest.get("run_id") != run_id or manifest.get("inputs") != inputs.as_dict():
        raise _mismatch(
            run_id,
            MANIFEST,
            ArtifactConflictReason.MANIFEST_MISMATCH,
            manifest_sha256,
            found,
            "the stored manifest records other inputs than this run id's; refusing to replay it",
        )
    blobs: dict[str, bytes] = {}
    for path, entry in sorted(manifest["artifacts"].items()):
        blob = _stored(run_id, path)
        if blob is None:
            return None
        content_sha = hashlib.sha256(blob).hexdigest()
        if content_sha != entry["sha256"]:
            raise _mismatch(
                run_id,
                path,
                ArtifactConflictReason.STORED_MISMATCH,
                entry["sha256"],
                content_sha,
                "the stored object does not match the run's manifest (changed after it was "
                "written); refusing to replay it",
            )
        blobs[path] = blob
    entries = {
        path: artifact_put(run_id=run_id, path=path, data=blob, output_dir=output_dir)
        for path, blob in blobs.items()
    }
    artifact_put(run_id=run_id, path=MANIFEST, data=data, output_dir=output_dir)
    values = {
        path: blob.decode("utf-8") if path.endswith(".yaml") else json.loads(blob)
        for path, blob in blobs.items()
    }
    return Evidence(entries=entries, manifest=manifest, manifest_sha256=found, values=values)


def replayed_outcome(evidence: Evidence) -> LaneOutcome:
    """The outcome summary a replay reports (no candidate spec: nothing is recorded again)."""
    manifest = evidence.manifest
    summary = manifest["outcome"]
    return LaneOutcome(
        run_id=manifest["run_id"],
        candidate_id=summary["candidate_id"],
        status=summary["status"],
        promotion_target=summary["promotion_target"],
        recommended_mode=summary["recommended_mode"],
        candidate=None,
        candidate_hash=summary["candidate_hash"],
        artifacts=evidence.values,
        recommendation=summary["recommendation"],
        gate_trace_id=summary["gate_report_trace_id"],
        recommendation_trace_id=summary["recommendation_trace_id"],
    )
