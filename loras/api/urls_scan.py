"""The scanner's routes (POST /api/loras/scan/)."""

from django.urls import path

from .views_scan import LoraScanView

urlpatterns = [
    path("loras/scan/", LoraScanView.as_view(), name="lora-scan"),
]
