"""API URL patterns of image lineage (issue 15), mounted under /api/ by config/urls.py."""

from django.urls import path

from .views_lineage import ImageRepeatView

urlpatterns: list = [
    path("images/<int:pk>/repeat/", ImageRepeatView.as_view(), name="image-repeat"),
]
