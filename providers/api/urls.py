"""API URL patterns of this app, mounted under /api/ by config/urls.py (before images')."""

from django.urls import path

from .views import PromptEnhanceView, ProviderHealthView, ProviderListView, ProviderModelsView
from .views_samplers import SamplerListView, ScheduleTypeListView, VaeListView

urlpatterns: list = [
    path("providers/", ProviderListView.as_view(), name="providers"),
    path("providers/health/", ProviderHealthView.as_view(), name="providers-health"),
    path("providers/models/", ProviderModelsView.as_view(), name="providers-models"),
    path("prompt-helpers/enhance/", PromptEnhanceView.as_view(), name="prompt-enhance"),
    path("samplers/", SamplerListView.as_view(), name="samplers"),
    path("schedulers/", ScheduleTypeListView.as_view(), name="schedulers"),
    path("vaes/", VaeListView.as_view(), name="vaes"),
]
