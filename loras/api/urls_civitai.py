"""Routes of Civitai refresh and downloads (included before the router)."""

from django.urls import path

from .views_civitai import CivitaiRefreshAllView, DownloadListCreateView, LoraCivitaiRefreshView

urlpatterns = [
    path("loras/civitai/refresh-all/", CivitaiRefreshAllView.as_view(),
         name="lora-civitai-refresh-all"),
    path("loras/<int:pk>/civitai/refresh/", LoraCivitaiRefreshView.as_view(),
         name="lora-civitai-refresh"),
    path("downloads/", DownloadListCreateView.as_view(), name="downloads"),
]
