from rest_framework import serializers

from ..models import Job
from ..snapshots import job_snapshot


class JobSerializer(serializers.ModelSerializer):
    """The job snapshot (same shape as the WebSocket event's ``job``)."""

    error = serializers.SerializerMethodField()
    ws_url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "kind", "status", "progress", "step", "total_steps", "message",
                  "eta_seconds", "result", "error", "cancel_requested", "created_at",
                  "started_at", "finished_at", "seq", "ws_url"]
        read_only_fields = fields

    def get_error(self, job) -> dict | None:
        return job_snapshot(job)["error"]

    def get_ws_url(self, job) -> str:
        return f"/ws/jobs/{job.id}/"
