from django.contrib import admin

from .models import LoraModel


@admin.register(LoraModel)
class LoraModelAdmin(admin.ModelAdmin):
    list_display = ["name", "base_model", "size", "sha256", "created_at"]
    search_fields = ["name", "path", "sha256"]
    list_filter = ["base_model"]
