from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.schema import api_errors

from ..models import Job
from ..selectors import job_get, job_list
from ..services import job_cancel, job_pause, job_resume
from .serializers import JobSerializer


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your jobs (newest first; filter with ``?status=`` and ``?kind=``), one job, cancel."""

    serializer_class = JobSerializer
    queryset = Job.objects.none()

    def get_queryset(self):
        return job_list(user=self.request.user, filters=self.request.query_params)

    def get_object(self):
        return job_get(user=self.request.user, pk=self.kwargs["pk"])

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    @api_errors(409)  # job_finished
    def cancel(self, request, pk=None):
        """Cancel a queued job at once, or ask a running one to stop at its next step."""
        job = job_cancel(job=self.get_object())
        return Response(JobSerializer(job, context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    @api_errors(409)
    def pause(self, request, pk=None):
        """Pause a pausable job (e.g. an example-image download): at once when queued, at its
        next step when running. 400 ``job_not_pausable``, 409 ``job_finished``."""
        return Response(JobSerializer(job_pause(job=self.get_object()),
                                       context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    @api_errors(409, 503)  # job_finished; the broker is down
    def resume(self, request, pk=None):
        """Resume a paused job from where it stopped. 400 ``job_not_paused``."""
        return Response(JobSerializer(job_resume(job=self.get_object()),
                                       context=self.get_serializer_context()).data)
