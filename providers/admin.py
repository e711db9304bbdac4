from django.contrib import admin

from .models import ModelProfile


@admin.register(ModelProfile)
class ModelProfileAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "provider", "pipeline_type", "model_path", "enabled",
                    "is_default"]
    list_filter = ["provider", "pipeline_type", "enabled"]
    search_fields = ["name", "slug", "model_path"]
    prepopulated_fields = {"slug": ("name",)}
