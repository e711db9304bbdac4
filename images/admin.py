from django.contrib import admin
from django.utils.html import format_html

from .models import GenerationRequest, Image, UsageLog


@admin.register(GenerationRequest)
class GenerationRequestAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "profile", "prompt", "width", "height", "steps", "seed",
                    "created_at"]
    list_filter = ["profile"]
    search_fields = ["prompt"]
    raw_id_fields = ["job"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "preview", "user", "model_name", "width", "height", "seed",
                    "created_at"]
    list_filter = ["provider", "model_name", "is_public"]
    search_fields = ["prompt", "parameters"]
    readonly_fields = ["preview", "parameters"]
    raw_id_fields = ["request"]

    @admin.display(description="Preview")
    def preview(self, obj):
        if not obj.thumbnail:
            return "-"
        return format_html('<img src="{}" style="max-height:64px">', obj.thumbnail.url)


@admin.register(UsageLog)
class UsageLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "provider", "model_name", "image_count",
                    "duration_seconds"]
    list_filter = ["provider", "model_name"]
