"""Pages of the LoRA library (/loras/, /loras/<id>/, trash, duplicates, downloads)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.lora_list_page, name="lora-list"),
    path("<int:pk>/", views.lora_detail_page, name="lora-detail"),
    path("trash/", views.lora_trash_page, name="lora-trash"),
    path("duplicates/", views.lora_duplicates_page, name="lora-duplicates"),
    path("downloads/", views.lora_downloads_page, name="lora-downloads"),
]
