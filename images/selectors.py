"""Reads of requests and images. Others' private objects are 404."""

from django.db.models import Q
from django.shortcuts import get_object_or_404

from .models import GenerationRequest, Image


def image_list(*, user):
    """Images of ``user``, newest first."""
    return Image.objects.filter(user=user).select_related("request")


def image_get(*, user, pk) -> Image:
    """An image of ``user`` or a public one. Raises ``Http404`` otherwise."""
    qs = Image.objects.select_related("request__profile")
    visible = Q(is_public=True) | Q(user_id=getattr(user, "pk", None))
    return get_object_or_404(qs.filter(visible), pk=pk)


def generation_request_get(*, user, pk) -> GenerationRequest:
    """A generation request of ``user`` with its job and images. Raises ``Http404``."""
    return get_object_or_404(
        GenerationRequest.objects.select_related("job", "profile").prefetch_related("images"),
        pk=pk, user=user)
