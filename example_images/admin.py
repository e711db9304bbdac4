from django.contrib import admin

from .models import ExampleImage


@admin.register(ExampleImage)
class ExampleImageAdmin(admin.ModelAdmin):
    list_display = ("id", "lora", "source", "file", "width", "height", "nsfw_level", "created_at")
    list_filter = ("source", "nsfw_level")
    search_fields = ("lora__name", "file", "prompt", "sha256")
    raw_id_fields = ("lora", "generated_image")
