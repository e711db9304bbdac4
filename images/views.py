"""Server-rendered pages: generate (/), gallery, image detail."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from loras.models import LoraModel
from providers.models import ModelProfile

from .selectors import image_get, image_list


@login_required
def generate_page(request):
    """The generate form with a live progress bar (WebSocket) and the latest images."""
    profiles = ModelProfile.objects.filter(enabled=True)
    recent = image_list(user=request.user)[:12]
    loras = LoraModel.objects.all()[:500]
    return render(request, "images/generate.html",
                  {"profiles": profiles, "recent": recent, "loras": loras})


@login_required
def gallery_page(request):
    """A grid of the user's thumbnails, 60 per page."""
    page = Paginator(image_list(user=request.user), 60).get_page(request.GET.get("page"))
    return render(request, "images/gallery.html", {"page": page})


@login_required
def image_detail_page(request, pk):
    """One image with its generation parameters."""
    image = image_get(user=request.user, pk=pk)
    return render(request, "images/image_detail.html", {"image": image})
