"""Pages of the LoRA library (/loras/, /loras/<id>/)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.lora_list_page, name="lora-list"),
    path("<int:pk>/", views.lora_detail_page, name="lora-detail"),
]
