"""The one snapshot shape shared by polling (``GET /api/jobs/<id>/``) and WebSocket events."""

from __future__ import annotations

from .models import Job


def _iso(value):
    return value.isoformat() if value else None


def job_snapshot(job: Job) -> dict:
    """Serialize ``job`` to the JSON snapshot clients see.

    Shape: ``{id, kind, status, progress (0..1), step, total_steps, message, eta_seconds,
    result, error: {code, message} | null, created_at, started_at, finished_at, seq,
    ws_url}``.
    """
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
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "seq": job.seq,
        "ws_url": f"/ws/jobs/{job.id}/",
    }
