"""Reads of jobs. A user sees only their own jobs; others' are 404."""

import uuid

from django.http import Http404
from django.shortcuts import get_object_or_404

from .models import Job


def job_list(*, user, filters: dict | None = None):
    """Jobs of ``user``, newest first; ``filters`` may hold ``status`` and ``kind``."""
    qs = Job.objects.filter(user=user)
    for key in ("status", "kind"):
        if filters and filters.get(key):
            qs = qs.filter(**{key: filters[key]})
    return qs


def job_get(*, user, pk) -> Job:
    """One job of ``user``. Raises ``Http404`` when missing, someone else's, or ``pk`` is not
    a UUID."""
    try:
        uuid.UUID(str(pk))
    except ValueError:
        raise Http404("No such job.") from None
    return get_object_or_404(Job, pk=pk, user=user)
