"""Serializers of the providers API (shapes only; rules live in services/selectors)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.redact import redact_paths_in, viewer_is_staff

from ..models import ModelProfile


class NonStaffRedactMixin:
    """Absolute server paths in ``redacted_fields`` become their last component for users who
    are not staff (``core.redact``); staff see them as stored."""

    redacted_fields: tuple[str, ...] = ()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not viewer_is_staff(self.context):
            for name in self.redacted_fields:
                if name in data:
                    data[name] = redact_paths_in(data[name])
        return data


class ProviderSerializer(NonStaffRedactMixin, serializers.Serializer):
    redacted_fields = ("detail",)
    name = serializers.CharField()
    backend = serializers.CharField()
    queue = serializers.CharField()
    configured = serializers.BooleanField()
    missing = serializers.ListField(child=serializers.CharField(),
                                    help_text="Settings to set before it can be used.")
    importable = serializers.BooleanField()
    capabilities = serializers.DictField()
    pipeline_types = serializers.ListField(child=serializers.CharField())
    detail = serializers.CharField(allow_blank=True)


class ProviderErrorSerializer(NonStaffRedactMixin, serializers.Serializer):
    redacted_fields = ("message",)
    code = serializers.CharField()
    message = serializers.CharField()
    at = serializers.FloatField(required=False, help_text="Epoch seconds.")


class ProviderHealthSerializer(NonStaffRedactMixin, serializers.Serializer):
    redacted_fields = ("detail",)
    name = serializers.CharField()
    configured = serializers.BooleanField()
    reachable = serializers.BooleanField()
    ok = serializers.BooleanField()
    latency_ms = serializers.FloatField(allow_null=True, help_text="Milliseconds.")
    detail = serializers.CharField(allow_blank=True)
    last_error = ProviderErrorSerializer(allow_null=True)
    checked_at = serializers.FloatField(help_text="Epoch seconds.")
    cached = serializers.BooleanField()


class ProviderModelSerializer(NonStaffRedactMixin, serializers.Serializer):
    redacted_fields = ("id",)  # a local checkpoint's id is its path
    id = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    pipeline_type = serializers.CharField()


class ProviderModelsSerializer(serializers.Serializer):
    provider = serializers.CharField()
    models = ProviderModelSerializer(many=True)
    error = ProviderErrorSerializer(allow_null=True)


@extend_schema_field({"type": "object", "additionalProperties": {}})
class OptionsField(serializers.JSONField):
    """A JSON object (``{}`` when omitted on create). ``null`` or another JSON type is 400: a
    form body's ``options=null`` parses to ``None`` and the column is NOT NULL."""

    default_error_messages = {"not_object": "Must be a JSON object."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_object")
        return value


class ModelProfileSerializer(NonStaffRedactMixin, serializers.ModelSerializer):
    """A model profile; ``options`` are the provider's own settings (a JSON object). For users
    who are not staff, absolute paths in ``model_path`` and ``options`` show their last
    component only."""

    redacted_fields = ("model_path", "options")

    options = OptionsField(required=False)

    class Meta:
        model = ModelProfile
        fields = ["id", "name", "slug", "provider", "pipeline_type", "model_path", "options",
                  "default_width", "default_height", "default_steps", "default_guidance_scale",
                  "default_negative_prompt", "max_width", "max_height", "enabled", "is_default",
                  "source", "note", "created_at"]
        read_only_fields = ["id", "source", "note", "created_at"]


class EnhanceSerializer(serializers.Serializer):
    prompt = serializers.CharField(max_length=4000)
    provider = serializers.CharField(required=False, allow_blank=True, default="")


class EnhanceResponseSerializer(serializers.Serializer):
    prompt = serializers.CharField()
    provider = serializers.CharField()
