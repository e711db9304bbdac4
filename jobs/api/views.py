from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from ..models import Job
from ..selectors import job_get, job_list
from ..services import job_cancel
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
    def cancel(self, request, pk=None):
        """Cancel a queued job at once, or ask a running one to stop at its next step."""
        job = job_cancel(job=self.get_object())
        return Response(JobSerializer(job).data)
