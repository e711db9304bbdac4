"""POST /api/loras/scan/: start a library scan job."""

from drf_spectacular.utils import extend_schema
from rest_framework.views import APIView

from core.schema import api_errors
from jobs.api.serializers import JobAcceptedSerializer, accepted_response

from ..permissions import ManagesLibrary
from ..services.scan import library_scan_start


@api_errors(409, 503)  # a scan is queued or running; the broker is down
class LoraScanView(APIView):
    """Queue a scan of every library root; answers 202 with the job to follow (409
    ``job_running`` when a scan is already queued or running). Library managers only (403
    ``permission_denied``, ``loras.permissions``)."""

    permission_classes = [ManagesLibrary]
    throttle_scope = "lora_scan"  # THROTTLE_LORA_SCAN_RATE, per user

    @extend_schema(request=None, responses={202: JobAcceptedSerializer})
    def post(self, request):
        return accepted_response(library_scan_start(user=request.user))
