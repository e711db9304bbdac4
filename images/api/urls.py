"""API URL patterns of this app, mounted under /api/ by config/urls.py."""

from django.urls import path

from .views_bulk import ImageBulkView, ImageZipView
from .views_edit import EditView, UpscaleView
from .views_library import ProjectGalleryView
from .views_pnginfo import PngInfoView

urlpatterns: list = [
    path("images/bulk/", ImageBulkView.as_view(), name="image-bulk"),  # gallery (issue 15)
    path("images/zip/", ImageZipView.as_view(), name="image-zip"),
    path("edit/", EditView.as_view(), name="edit"),
    path("upscale/", UpscaleView.as_view(), name="upscale"),
    path("png-info/", PngInfoView.as_view(), name="png-info"),
    path("projects/<int:pk>/gallery/", ProjectGalleryView.as_view(), name="project-gallery"),
]
