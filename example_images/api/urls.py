"""API URL patterns of this app, mounted under /api/ by config/urls.py (before the router, so
``/api/loras/<id>/example-images/...`` is not taken by the LoRA ViewSet)."""

from django.urls import path

from . import views

urlpatterns = [
    path("example-images/download/", views.DownloadView.as_view(), name="example-download"),
    path("example-images/status/", views.StatusView.as_view(), name="example-status"),
    path("example-images/pause/", views.PauseView.as_view(), name="example-pause"),
    path("example-images/resume/", views.ResumeView.as_view(), name="example-resume"),
    path("example-images/force/", views.ForceView.as_view(), name="example-force"),
    path("example-images/import/", views.ImportView.as_view(), name="example-import"),
    path("example-images/has/", views.HasView.as_view(), name="example-has"),
    path("example-images/open-folder/", views.OpenFolderView.as_view(),
         name="example-open-folder"),
    path("example-images/<int:image_id>/file/", views.FileView.as_view(), name="example-file"),
    path("loras/<int:lora_id>/example-images/", views.LoraExamplesView.as_view(),
         name="lora-examples"),
    path("loras/<int:lora_id>/example-images/generate/", views.LoraExampleGenerateView.as_view(),
         name="lora-examples-generate"),
    path("loras/<int:lora_id>/example-images/<int:image_id>/",
         views.LoraExampleDetailView.as_view(), name="lora-example-detail"),
    path("loras/<int:lora_id>/example-images/<int:image_id>/set-preview/",
         views.LoraExampleSetPreviewView.as_view(), name="lora-example-set-preview"),
]
