"""Routes of the Civitai update check, relink and the library export (before the router)."""

from django.urls import path

from .views_updates import (
    CivitaiLinkView,
    DownloadUpdateView,
    LibraryExportView,
    UpdateCheckView,
    UpdateIgnoreView,
)

urlpatterns = [
    path("loras/update-check/", UpdateCheckView.as_view(), name="lora-update-check"),
    path("loras/<int:pk>/update-ignore/", UpdateIgnoreView.as_view(), name="lora-update-ignore"),
    path("loras/<int:pk>/download-update/", DownloadUpdateView.as_view(),
         name="lora-download-update"),
    path("loras/<int:pk>/civitai-link/", CivitaiLinkView.as_view(), name="lora-civitai-link"),
    path("library/export/", LibraryExportView.as_view(), name="library-export"),
]
