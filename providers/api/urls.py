"""API URL patterns of this app, mounted under /api/ by config/urls.py (before images')."""

from django.urls import path

from .views import PromptEnhanceView, ProviderHealthView, ProviderListView, ProviderModelsView

urlpatterns: list = [
    path("providers/", ProviderListView.as_view(), name="providers"),
    path("providers/health/", ProviderHealthView.as_view(), name="providers-health"),
    path("providers/models/", ProviderModelsView.as_view(), name="providers-models"),
    path("prompt-helpers/enhance/", PromptEnhanceView.as_view(), name="prompt-enhance"),
]
