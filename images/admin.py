from django.contrib import admin
from django.utils.html import format_html

from .models import (
    GenerationRequest,
    Image,
    Project,
    PromptHelper,
    PromptHelperVersion,
    Style,
    Tag,
    ThemeFavorite,
    ThemeHelper,
    UsageLog,
)


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
    list_filter = ["provider", "model_name", "is_public", "is_favorite", "nsfw_level"]
    search_fields = ["prompt", "parameters", "title", "caption"]
    readonly_fields = ["preview", "parameters"]
    raw_id_fields = ["request", "source", "project"]
    filter_horizontal = ["tags"]

    @admin.display(description="Preview")
    def preview(self, obj):
        if not obj.thumbnail:
            return "-"
        return format_html('<img src="{}" style="max-height:64px">', obj.thumbnail.url)


@admin.register(UsageLog)
class UsageLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "provider", "model_name", "image_count",
                    "duration_seconds", "estimated_cost"]
    list_filter = ["provider", "model_name"]


# ------------------------------------------------------------------ library (#6)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "owner", "is_public", "updated_at"]
    list_filter = ["is_public"]
    search_fields = ["name", "description"]
    raw_id_fields = ["cover"]


@admin.register(Style)
class StyleAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "owner", "is_shared", "prompt_template"]
    list_filter = ["is_shared"]
    search_fields = ["name", "prompt_template"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "slug"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}


class PromptHelperVersionInline(admin.TabularInline):
    model = PromptHelperVersion
    extra = 0
    readonly_fields = ["version", "prompt", "negative_prompt", "created_at"]


@admin.register(PromptHelper)
class PromptHelperAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "owner", "current_version", "embedder", "updated_at"]
    search_fields = ["name", "prompt"]
    exclude = ["embedding"]
    readonly_fields = ["embedder", "current_version"]
    inlines = [PromptHelperVersionInline]

    def save_model(self, request, obj, form, change):
        """Keep the stored embedding in step with the prompt (as the API does)."""
        from .embeddings import get_embedder

        embedder = get_embedder()
        obj.embedding, obj.embedder = embedder.embed([obj.prompt])[0], embedder.name
        super().save_model(request, obj, form, change)


@admin.register(ThemeHelper)
class ThemeHelperAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "owner", "is_shared", "parent"]
    list_filter = ["is_shared"]
    search_fields = ["name", "description"]
    raw_id_fields = ["parent"]


@admin.register(ThemeFavorite)
class ThemeFavoriteAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "theme", "created_at"]
