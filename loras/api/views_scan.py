"""POST /api/loras/scan/: start a library scan job."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from ..services_scan import library_scan_start


class LoraScanView(APIView):
    """Queue a scan of every library root; answers 202 with the job to follow (409
    ``job_running`` when a scan is already queued or running). Any signed-in user may scan."""

    @extend_schema(request=None, responses={202: inline_serializer(
        name="LoraScanStarted", fields={"job": serializers.UUIDField(),
                                        "status": serializers.CharField(),
                                        "ws_url": serializers.CharField()})})
    def post(self, request):
        job = library_scan_start(user=request.user)
        return Response({"job": str(job.pk), "status": job.status,
                         "ws_url": f"/ws/jobs/{job.pk}/"}, status=status.HTTP_202_ACCEPTED)
