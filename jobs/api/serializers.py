"""Serializers of the jobs API: the job snapshot and the ``202 Accepted`` envelope.

Both render through ``jobs.snapshots`` so REST, WebSocket and every 202 answer carry the
same fields with the same rounding and timestamp format; the fields here describe that shape
for the OpenAPI schema.
"""

from rest_framework import serializers

from ..snapshots import job_accepted, job_snapshot, job_snapshot_for_viewer


class JobErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class JobSerializer(serializers.Serializer):
    """The job snapshot (same shape as the WebSocket event's ``job``): see
    ``jobs.snapshots.JobSnapshot``."""

    id = serializers.UUIDField()
    kind = serializers.CharField()
    status = serializers.ChoiceField(choices=["queued", "running", "paused", "succeeded",
                                              "failed", "canceled"])
    progress = serializers.FloatField(help_text="0..1, rounded to 4 places")
    step = serializers.IntegerField()
    total_steps = serializers.IntegerField()
    message = serializers.CharField(allow_blank=True)
    eta_seconds = serializers.FloatField(allow_null=True, help_text="seconds, 2 places")
    result = serializers.JSONField()
    error = JobErrorSerializer(allow_null=True)
    cancel_requested = serializers.BooleanField()
    attempts = serializers.IntegerField(help_text="runs started (a dead worker's job runs again)")
    created_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    seq = serializers.IntegerField()
    ws_url = serializers.CharField()

    def to_representation(self, instance):
        request = self.context.get("request")
        return job_snapshot_for_viewer(job_snapshot(instance),
                                       user=getattr(request, "user", None))


class JobAcceptedSerializer(serializers.Serializer):
    """The body of every ``202 Accepted``: ``id`` (the created resource: a generation request
    or download pk, else the job uuid), ``job`` (uuid), ``status``, ``status_url`` (poll it),
    ``ws_url`` (listen to it) and the full job ``snapshot``. Built by
    ``jobs.snapshots.job_accepted``."""

    id = serializers.JSONField(help_text="the created resource's id (integer or uuid string)")
    job = serializers.UUIDField()
    status = serializers.CharField()
    status_url = serializers.CharField()
    ws_url = serializers.CharField()
    snapshot = JobSerializer()

    def to_representation(self, instance):
        return job_accepted(instance)


def accepted_response(job, *, status_url: str | None = None, id=None, **extra):
    """``202 Accepted`` with the :class:`JobAcceptedSerializer` body for ``job``."""
    from rest_framework import status
    from rest_framework.response import Response

    from ..snapshots import job_accepted

    return Response(job_accepted(job, status_url=status_url, id=id, **extra),
                    status=status.HTTP_202_ACCEPTED)
