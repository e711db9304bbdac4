from django import forms
from django.contrib import admin

from core.exceptions import ApplicationError

from .models import ModelProfile
from .services import model_profile_check


class ModelProfileForm(forms.ModelForm):
    """Refuses a provider not in IMAGE_PROVIDERS or a pipeline type it lacks (as the API)."""

    class Meta:
        model = ModelProfile
        fields = "__all__"

    def clean(self):
        data = super().clean()
        if data.get("provider") and data.get("pipeline_type"):
            try:
                model_profile_check(provider=data["provider"],
                                    pipeline_type=data["pipeline_type"])
            except ApplicationError as exc:
                for field, messages in (exc.fields or {"provider": [exc.message]}).items():
                    self.add_error(field if field in self.fields else None, messages)
        return data


@admin.register(ModelProfile)
class ModelProfileAdmin(admin.ModelAdmin):
    form = ModelProfileForm
    list_display = ["name", "slug", "provider", "pipeline_type", "model_path", "enabled",
                    "is_default", "source", "note"]
    # source "library": made from a file under CHECKPOINT_ROOTS (docs/checkpoints.md#sync);
    # changing a synced field makes it "manual" and the sync leaves it alone.
    list_filter = ["provider", "pipeline_type", "enabled", "source"]
    search_fields = ["name", "slug", "model_path"]
    prepopulated_fields = {"slug": ("name",)}
