"""Serializers of Civitai refresh and downloads."""

from rest_framework import serializers

from jobs.api.serializers import JobSerializer

from ..models import Download, LoraModel


class CivitaiRefreshResultSerializer(serializers.ModelSerializer):
    """The LoRA fields a Civitai refresh fills."""

    class Meta:
        model = LoraModel
        fields = ["id", "civitai_model_id", "civitai_version_id", "base_model", "trigger_words",
                  "nsfw_level", "tags", "preview", "license_flags", "last_checked_at"]
        read_only_fields = fields


class CivitaiRefreshAllSerializer(serializers.Serializer):
    """Options of a library-wide refresh: only LoRAs without Civitai data (default), and/or
    only the given ids."""

    only_missing = serializers.BooleanField(default=True)
    lora_ids = serializers.ListField(child=serializers.IntegerField(min_value=1,
                                                                    max_value=2**63 - 1),
                                     required=False, allow_empty=False, max_length=100_000)


class DownloadCreateSerializer(serializers.Serializer):
    """A Civitai model version id or URL (``https://civitai.com/models/123?modelVersionId=456``
    or ``https://civitai.com/api/download/models/456``); optional root id and folder (relative;
    default ``DOWNLOAD_PATH_TEMPLATE``)."""

    model_version_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)
    url = serializers.URLField(max_length=2000, required=False)
    root = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)
    folder = serializers.CharField(max_length=1000, required=False, allow_blank=True)

    def validate(self, attrs):
        if not attrs.get("model_version_id") and not attrs.get("url"):
            raise serializers.ValidationError(
                {"model_version_id": ["Give model_version_id or url."]})
        return attrs


class DownloadSerializer(serializers.ModelSerializer):
    """A download with its job snapshot (sizes in bytes)."""

    job = JobSerializer(read_only=True)

    class Meta:
        model = Download
        fields = ["id", "job", "source_url", "civitai_model_id", "civitai_version_id", "root",
                  "target_folder", "file_name", "expected_sha256", "total_bytes",
                  "downloaded_bytes", "lora", "created_at"]
        read_only_fields = fields
