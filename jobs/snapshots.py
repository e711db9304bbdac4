"""The one snapshot shape shared by polling (``GET /api/jobs/<id>/``), WebSocket events and
every ``202 Accepted`` answer of an endpoint that queues work."""

from __future__ import annotations

from typing import Any, TypedDict

from .models import Job


class JobError(TypedDict):
    """Why a job failed: a stable ``code`` and a human ``message``."""

    code: str
    message: str


class JobSnapshot(TypedDict):
    """The JSON clients see for a job (REST, WebSocket and 202 answers alike).

    ``progress`` is 0..1 rounded to 4 places; ``eta_seconds`` seconds rounded to 2 places (or
    null); timestamps are ISO 8601 with an explicit UTC offset (``+00:00``); ``seq`` grows
    with every write so a client drops an event older than one it has.
    """

    id: str
    kind: str
    status: str
    progress: float
    step: int
    total_steps: int
    message: str
    eta_seconds: float | None
    result: dict
    error: JobError | None
    cancel_requested: bool
    attempts: int
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    seq: int
    ws_url: str


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def job_ws_url(job_id) -> str:
    """The WebSocket path that streams the snapshots of job ``job_id``."""
    return f"/ws/jobs/{job_id}/"


def job_snapshot(job: Job) -> JobSnapshot:
    """Serialize ``job`` to the :class:`JobSnapshot` clients see."""
    return {
        "id": str(job.id),
        "kind": job.kind,
        "status": job.status,
        "progress": round(job.progress, 4),
        "step": job.step,
        "total_steps": job.total_steps,
        "message": job.message,
        "eta_seconds": None if job.eta_seconds is None else round(job.eta_seconds, 2),
        "result": job.result,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "cancel_requested": job.cancel_requested,
        "attempts": job.attempts,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "seq": job.seq,
        "ws_url": job_ws_url(job.id),
    }


def job_snapshot_for_viewer(snapshot: JobSnapshot | None, *, user) -> JobSnapshot | None:
    """``snapshot`` as ``user`` may see it: for users who are not staff, absolute server paths
    in ``message`` and ``error`` keep their last component only (a worker writes e.g. an
    OSError's path there). REST, WebSocket and 202 answers all pass through here."""
    from core.redact import redact_paths, redact_paths_in

    if not snapshot or getattr(user, "is_staff", False):
        return snapshot
    return {**snapshot, "message": redact_paths(snapshot.get("message")),
            "error": redact_paths_in(snapshot.get("error"))}


def job_accepted(job: Job, *, status_url: str | None = None, id: Any = None,
                 **extra: Any) -> dict:
    """The body of every ``202 Accepted`` answer: the work was queued as ``job``.

    Shape: ``{"id", "job", "status", "status_url", "ws_url", "snapshot", **extra}`` where
    ``id`` is the created resource (a generation request's pk, a download's pk; the job's
    uuid when the job is the only resource), ``job`` the job uuid, ``status`` the job status,
    ``status_url`` where to poll (default ``/api/jobs/<uuid>/``), ``ws_url`` where to listen
    and ``snapshot`` the full :class:`JobSnapshot`.
    """
    return {
        "id": str(job.id) if id is None else id,
        **extra,
        "job": str(job.id),
        "status": job.status,
        "status_url": status_url or f"/api/jobs/{job.id}/",
        "ws_url": job_ws_url(job.id),
        "snapshot": job_snapshot(job),
    }
