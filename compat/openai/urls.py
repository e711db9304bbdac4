"""``/v1/``: the OpenAI Images API (see compat/openai/views.py and docs/clients.md)."""

from django.urls import path

from . import views

app_name = "openai"
urlpatterns = [
    path("images/generations", views.GenerationsView.as_view(), name="generations"),
    path("images/edits", views.EditsView.as_view(), name="edits"),
    path("models", views.ModelsView.as_view(), name="models"),
    path("images/files/<str:token>", views.ImageFileView.as_view(), name="image-file"),
]
