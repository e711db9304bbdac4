"""Serializers of the images library API (#6): images, projects, styles, tags, prompt
helpers, themes, usage. Shapes are documented in the views' docstrings."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import (
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
from ..selectors import (
    image_derived_visible,
    image_operation,
    image_operation_label,
    image_source_visible,
)


def _uid(context) -> int | None:
    request = context.get("request")
    user = getattr(request, "user", None)
    return user.pk if getattr(user, "is_authenticated", False) else None


def _user(context):
    return getattr(context.get("request"), "user", None)


class ImageRefSerializer(serializers.Serializer):
    """Another image, by id, with its file and detail page URLs (site-relative)."""

    id = serializers.IntegerField()
    url = serializers.CharField()
    detail_url = serializers.CharField()


class LibraryImageSerializer(serializers.ModelSerializer):
    """An image with its organization fields; ``owner`` is the username."""

    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    audio_url = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    owner = serializers.CharField(source="user.username", read_only=True)
    is_owner = serializers.SerializerMethodField()
    detail_url = serializers.SerializerMethodField()
    operation = serializers.SerializerMethodField(
        help_text="What made the image: txt2img, hires (txt2img + hires fix), img2img, "
                  "inpaint or upscale.")
    operation_label = serializers.SerializerMethodField()
    source = serializers.SerializerMethodField(
        help_text="The image this one was edited or upscaled from, when you may read it.")
    derived = serializers.SerializerMethodField(
        help_text="Ids of the images edited or upscaled from this one that you may read.")

    class Meta:
        model = Image
        fields = ["id", "url", "thumbnail_url", "audio_url", "width", "height", "seed", "steps",
                  "guidance_scale", "sampler", "prompt", "negative_prompt", "provider",
                  "model_name", "loras", "parameters", "request", "kind", "operation",
                  "operation_label", "source", "derived", "title", "caption",
                  "alt_text", "tags", "project", "is_public", "is_favorite", "nsfw_level",
                  "owner", "is_owner", "detail_url", "created_at"]
        read_only_fields = fields

    def get_url(self, image) -> str:
        return image.file.url

    def get_thumbnail_url(self, image) -> str | None:
        return image.thumbnail.url if image.thumbnail else None

    def get_audio_url(self, image) -> str | None:
        return image.audio.url if image.audio else None

    def get_tags(self, image) -> list[str]:
        return sorted(t.name for t in image.tags.all())

    def get_is_owner(self, image) -> bool:
        return image.user_id == _uid(self.context)

    def get_detail_url(self, image) -> str:
        return f"/images/{image.pk}/"

    def get_operation(self, image) -> str:
        return image_operation(image)

    def get_operation_label(self, image) -> str:
        return image_operation_label(image)

    @extend_schema_field(ImageRefSerializer(allow_null=True))
    def get_source(self, image) -> dict | None:
        source = image_source_visible(image=image, user=_user(self.context))
        if source is None:
            return None
        return {"id": source.pk, "url": source.file.url, "detail_url": f"/images/{source.pk}/"}

    def get_derived(self, image) -> list[int]:
        return [d.pk for d in image_derived_visible(image=image, user=_user(self.context))]


class ImagePatchSerializer(serializers.Serializer):
    """``PATCH /api/images/<id>/``: every field optional; ``tags`` replaces the set."""

    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    caption = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    alt_text = serializers.CharField(max_length=500, required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=100), max_length=100,
                                 required=False)
    project = serializers.PrimaryKeyRelatedField(queryset=Project.objects.all(), required=False,
                                                 allow_null=True)
    is_public = serializers.BooleanField(required=False)
    is_favorite = serializers.BooleanField(required=False)
    nsfw_level = serializers.IntegerField(min_value=0, max_value=3, required=False)


class ProjectSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    image_count = serializers.IntegerField(read_only=True, default=0)
    cover = serializers.PrimaryKeyRelatedField(queryset=Image.objects.all(), required=False,
                                               allow_null=True)
    cover_thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "description", "cover", "cover_thumbnail_url", "is_public",
                  "image_count", "owner", "created_at", "updated_at"]
        read_only_fields = ["id", "owner", "image_count", "created_at", "updated_at"]

    def to_representation(self, project):
        data = super().to_representation(project)
        if data.get("cover_thumbnail_url") is None:
            data["cover"] = None  # a cover the viewer may not read is not named by id either
        return data

    def get_cover_thumbnail_url(self, project) -> str | None:
        cover = project.cover
        if cover is None or not (cover.is_public or cover.user_id == _uid(self.context)):
            return None
        return cover.thumbnail.url if cover.thumbnail else cover.file.url


class StyleSerializer(serializers.ModelSerializer):
    """A style; ``owner`` is null for a shared style without an owner."""

    owner = serializers.CharField(source="owner.username", read_only=True, default=None,
                                  allow_null=True)
    editable = serializers.SerializerMethodField()

    class Meta:
        model = Style
        fields = ["id", "name", "prompt_template", "negative_prompt", "default_parameters",
                  "is_shared", "owner", "editable", "created_at", "updated_at"]
        read_only_fields = ["id", "owner", "editable", "created_at", "updated_at"]

    def get_editable(self, style) -> bool:
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if style.owner_id is None or style.is_shared:
            return bool(user and user.is_staff)
        return style.owner_id == _uid(self.context)

    def validate_default_parameters(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be an object.")
        allowed = {"width", "height", "steps", "guidance_scale", "model"}
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise serializers.ValidationError(f"Unknown keys: {', '.join(unknown)}.")
        from .serializers import GenerateSerializer  # same limits as POST /api/generate/

        check = GenerateSerializer(data={"prompt": "x", **value})
        if not check.is_valid():
            key, messages = next(iter(check.errors.items()))
            raise serializers.ValidationError(f"{key}: {messages[0]}")
        return {k: check.validated_data[k] for k in value}


class TagSerializer(serializers.ModelSerializer):
    """A tag; ``slug`` is Django's ``slugify(name, allow_unicode=True)`` (letters of any
    script, not only ASCII)."""

    count = serializers.IntegerField(read_only=True)
    slug = serializers.CharField(read_only=True)

    class Meta:
        model = Tag
        fields = ["id", "name", "slug", "count"]
        read_only_fields = fields


class PromptHelperSerializer(serializers.ModelSerializer):
    class Meta:
        model = PromptHelper
        fields = ["id", "name", "prompt", "negative_prompt", "current_version", "created_at",
                  "updated_at"]
        read_only_fields = ["id", "current_version", "created_at", "updated_at"]


class PromptHelperVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = PromptHelperVersion
        fields = ["version", "prompt", "negative_prompt", "created_at"]
        read_only_fields = fields


class RollbackSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1)


class SimilarResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prompt = serializers.CharField()
    score = serializers.FloatField()


class SimilarResponseSerializer(serializers.Serializer):
    query = serializers.CharField()
    embedder = serializers.CharField()
    results = SimilarResultSerializer(many=True)


class ThemeSerializer(serializers.ModelSerializer):
    """A theme; ``owner`` is null for a shared theme without an owner."""

    owner = serializers.CharField(source="owner.username", read_only=True, default=None,
                                  allow_null=True)
    terms = serializers.ListField(child=serializers.CharField(max_length=200), max_length=200,
                                  required=False)
    editable = serializers.SerializerMethodField()
    is_favorite = serializers.SerializerMethodField()
    favorite_id = serializers.SerializerMethodField()

    class Meta:
        model = ThemeHelper
        fields = ["id", "name", "description", "terms", "parent", "is_shared", "owner",
                  "editable", "is_favorite", "favorite_id", "created_at", "updated_at"]
        read_only_fields = ["id", "parent", "owner", "editable", "is_favorite", "favorite_id",
                            "created_at", "updated_at"]

    def _favorite(self, theme):
        favorites = self.context.get("favorites")
        if favorites is None:
            uid = _uid(self.context)
            return theme.favorites.filter(user_id=uid).values_list("pk", flat=True).first()
        return favorites.get(theme.pk)

    def get_editable(self, theme) -> bool:
        user = getattr(self.context.get("request"), "user", None)
        if theme.owner_id is None or theme.is_shared:
            return bool(user and user.is_staff)
        return theme.owner_id == _uid(self.context)

    def get_is_favorite(self, theme) -> bool:
        return self._favorite(theme) is not None

    def get_favorite_id(self, theme) -> int | None:
        return self._favorite(theme)


class RemixSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    terms = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
    add_terms = serializers.ListField(child=serializers.CharField(max_length=200),
                                      required=False)


class ThemeFavoriteSerializer(serializers.ModelSerializer):
    theme = serializers.SerializerMethodField()

    class Meta:
        model = ThemeFavorite
        fields = ["id", "theme", "created_at"]
        read_only_fields = fields

    def get_theme(self, favorite) -> dict:
        return ThemeSerializer(favorite.theme, context=self.context).data


class ThemeFavoriteCreateSerializer(serializers.Serializer):
    theme = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class UsageLogSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True, default=None,
                                 allow_null=True)

    class Meta:
        model = UsageLog
        fields = ["id", "user", "provider", "model_name", "kind", "image_count",
                  "duration_seconds", "lora_names", "estimated_cost", "request", "created_at"]
        read_only_fields = fields


class UsageSummaryQuerySerializer(serializers.Serializer):
    """``GET /api/usage/summary/`` query: ``days`` limits the summary to the last N days."""

    days = serializers.IntegerField(min_value=0, max_value=36500, required=False,
                                    help_text="Last N days only (at most 100 years).")
