"""The A1111 API's lists and settings: sd-models, sd-vae, loras, embeddings, samplers,
schedulers, upscalers, options, and the small answers clients ask for on connect (scripts,
cmd-flags, memory ...). Shapes from A1111's ``modules/api/models.py`` (``SDModelItem``,
``SamplerItem``, ``SchedulerItem``, ``UpscalerItem``, ...) and the built-in Lora extension
(``extensions-builtin/Lora/scripts/lora_script.py``: ``name``, ``alias``, ``path``,
``metadata``).

Non-staff users see file names, never absolute server paths (as in the native API).
"""

from __future__ import annotations

import os

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, OpenApiTypes, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from core.exceptions import ApplicationError

from ..models import CompatOptions
from . import serializers as s
from .translate import profile_find, profile_hashes, profile_title
from .views import A1111View

NULL_ANSWER = OpenApiResponse(OpenApiTypes.ANY, description="`null`, as A1111 answers.")


def _null() -> HttpResponse:
    """A JSON ``null`` body (DRF renders ``Response(None)`` as an empty body)."""
    return HttpResponse(b"null", content_type="application/json")

#: Pipeline types that only upscale: not offered as checkpoints.
UPSCALE_ONLY = ("sd-upscale", "sd-latent-upscale")


def _path_for(user, path: str) -> str:
    return path if getattr(user, "is_staff", False) else os.path.basename(path.rstrip("/"))


def _profiles():
    from providers.models import ModelProfile

    return ModelProfile.objects.filter(enabled=True).exclude(pipeline_type__in=UPSCALE_ONLY)


def _list(item_serializer):
    return extend_schema(responses=item_serializer(many=True))


class A1111SdModelItem(serializers.Serializer):
    title = serializers.CharField()
    model_name = serializers.CharField()
    hash = serializers.CharField(allow_null=True)
    sha256 = serializers.CharField(allow_null=True)
    filename = serializers.CharField()
    config = serializers.CharField(allow_null=True)


class SdModelsView(A1111View):
    """The model profiles as A1111 checkpoints: ``title`` ("slug [short hash]", the value
    ``sd_model_checkpoint`` takes), ``model_name`` (the slug), ``hash``/``sha256`` of a
    single-file checkpoint once hashed, ``filename``."""

    @_list(A1111SdModelItem)
    def get(self, request):
        out = []
        for profile in _profiles():
            short, sha = profile_hashes(profile)
            out.append({"title": profile_title(profile), "model_name": profile.slug,
                        "hash": short or None, "sha256": sha or None,
                        "filename": _path_for(request.user, profile.model_path or profile.slug),
                        "config": None})
        return Response(out)


class A1111SdVaeItem(serializers.Serializer):
    model_name = serializers.CharField()
    filename = serializers.CharField()


class SdVaeView(A1111View):
    """The VAEs a request may name in ``override_settings.sd_vae`` (files and folders under
    ``VAE_DIR``, ``providers.vae``); ``Automatic`` keeps the model's own."""

    @_list(A1111SdVaeItem)
    def get(self, request):
        from providers.vae import vae_choices, vae_dir

        return Response([{"model_name": name,
                          "filename": _path_for(request.user, str(vae_dir() / name))}
                         for name in vae_choices()])


class A1111LoraItem(serializers.Serializer):
    name = serializers.CharField()
    alias = serializers.CharField()
    path = serializers.CharField()
    metadata = serializers.DictField()


class LorasView(A1111View):
    """The LoRA library: ``name`` (file stem, what ``<lora:name:w>`` takes), ``alias`` (the
    kohya ``ss_output_name``, also accepted in prompts), ``path``, ``metadata`` (the
    safetensors header metadata). Missing and excluded files are left out."""

    @_list(A1111LoraItem)
    def get(self, request):
        from loras.models import LoraModel

        out = []
        for lora in LoraModel.objects.filter(status=LoraModel.Status.PRESENT,
                                             excluded=False).select_related("root"):
            stem = os.path.splitext(lora.file_name)[0]
            metadata = lora.header_metadata if isinstance(lora.header_metadata, dict) else {}
            alias = str(metadata.get("ss_output_name") or stem)
            out.append({"name": stem, "alias": alias,
                        "path": lora.abs_path if request.user.is_staff else lora.relative_path,
                        "metadata": metadata})
        return Response(out)


class RefreshView(A1111View):
    """A1111 re-reads its folders here; Atelier's lists are always current (profiles are rows,
    the LoRA library is scanned from ``/loras/`` or ``POST /api/loras/scan/``). Answers
    ``null`` as A1111 does."""

    @extend_schema(request=None, responses={200: NULL_ANSWER})
    def post(self, request):
        return _null()


class EmbeddingsView(A1111View):
    """Textual-inversion embeddings: Atelier loads none, so both lists are empty."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response({"loaded": {}, "skipped": {}})


class A1111SamplerItem(serializers.Serializer):
    name = serializers.CharField()
    aliases = serializers.ListField(child=serializers.CharField())
    options = serializers.DictField(child=serializers.CharField())


class SamplersView(A1111View):
    """The samplers that run here (``providers.samplers``), A1111's labels and aliases."""

    @_list(A1111SamplerItem)
    def get(self, request):
        from providers.samplers import samplers_payload

        return Response([{"name": item["name"], "aliases": item["aliases"],
                          "options": {k: str(v) for k, v in item["options"].items()}}
                         for item in samplers_payload() if item.get("supported")])


class A1111SchedulerItem(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    aliases = serializers.ListField(child=serializers.CharField(), allow_null=True)
    default_rho = serializers.FloatField(allow_null=True)
    need_inner_model = serializers.BooleanField(allow_null=True)


class SchedulersView(A1111View):
    """The schedule types that run here: ``name`` (A1111's internal name, e.g. ``karras``)
    and ``label``."""

    @_list(A1111SchedulerItem)
    def get(self, request):
        from providers.samplers import schedulers_payload

        return Response([{"name": item["name"], "label": item["label"],
                          "aliases": item["aliases"] or None, "default_rho": None,
                          "need_inner_model": None}
                         for item in schedulers_payload() if item.get("supported")])


class A1111UpscalerItem(serializers.Serializer):
    name = serializers.CharField()
    model_name = serializers.CharField(allow_null=True)
    model_path = serializers.CharField(allow_null=True)
    model_url = serializers.CharField(allow_null=True)
    scale = serializers.FloatField(allow_null=True)


class UpscalersView(A1111View):
    """Upscalers: ``None`` and ``Lanczos`` (A1111's built-ins), then upscale model profiles
    (their slug is a hires-fix ``hr_upscaler``)."""

    @_list(A1111UpscalerItem)
    def get(self, request):
        from providers.models import ModelProfile

        out = [{"name": "None", "model_name": None, "model_path": None, "model_url": None,
                "scale": 4}, {"name": "Lanczos", "model_name": None, "model_path": None,
                              "model_url": None, "scale": 4}]
        for profile in ModelProfile.objects.filter(enabled=True, pipeline_type__in=UPSCALE_ONLY):
            out.append({"name": profile.slug, "model_name": profile.name, "model_path": None,
                        "model_url": None,
                        "scale": 2 if profile.pipeline_type == "sd-latent-upscale" else 4})
        return Response(out)


class A1111NameItem(serializers.Serializer):
    name = serializers.CharField()


class LatentUpscaleModesView(A1111View):
    """Hires-fix upscalers that work on latents: ``Latent``."""

    @_list(A1111NameItem)
    def get(self, request):
        return Response([{"name": "Latent"}])


class A1111PromptStyleItem(serializers.Serializer):
    name = serializers.CharField()
    prompt = serializers.CharField(allow_null=True)
    negative_prompt = serializers.CharField(allow_null=True)


class PromptStylesView(A1111View):
    """Your styles and the shared ones (``/api/styles/``): A1111 writes ``{prompt}`` in a
    style's prompt as Atelier does."""

    @_list(A1111PromptStyleItem)
    def get(self, request):
        from django.db.models import Q

        from images.models import Style

        styles = Style.objects.filter(Q(owner=request.user) | Q(is_shared=True)).order_by("name")
        return Response([{"name": st.name, "prompt": st.prompt_template,
                          "negative_prompt": st.negative_prompt} for st in styles])


class EmptyListView(A1111View):
    """A list Atelier has nothing for (hypernetworks, face restorers, Real-ESRGAN models,
    extensions): ``[]``."""

    @_list(A1111NameItem)
    def get(self, request):
        return Response([])


class ScriptsView(A1111View):
    """Selectable scripts: none (clients such as webuiapi look for ControlNet here)."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response({"txt2img": [], "img2img": []})


def options_get(user) -> dict:
    """The A1111 options a client reads (``GET /sdapi/v1/options``), for ``user``."""
    from providers.selectors import profile_get

    options = CompatOptions.objects.select_related("checkpoint").filter(user=user).first()
    profile = options.checkpoint if options is not None and options.checkpoint_id else None
    if profile is None or not profile.enabled:
        try:
            profile = profile_get(slug=None)
        except ApplicationError:
            profile = None
    short, _ = profile_hashes(profile) if profile is not None else ("", "")
    return {"sd_model_checkpoint": profile_title(profile) if profile is not None else None,
            "sd_checkpoint_hash": short or None,
            "CLIP_stop_at_last_layers": options.clip_skip if options is not None else 1,
            "sd_vae": "Automatic", "samples_format": "png", "samples_save": True,
            "save_images_add_number": True, "sd_lora": "None", "lora_preferred_name": "Filename",
            "show_progress_every_n_steps": 0, "live_previews_enable": True,
            "enable_pnginfo": True}


class OptionsView(A1111View):
    """``GET``: your A1111 options. ``POST``: set ``sd_model_checkpoint`` (a title, slug or
    name from ``sd-models``: your default model on this API) and ``CLIP_stop_at_last_layers``
    (your default clip skip); other keys are accepted and not kept. Answers ``null``."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response(options_get(request.user))

    @extend_schema(request=s.A1111OptionsSerializer, responses={200: NULL_ANSWER})
    def post(self, request):
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
        body = s.A1111OptionsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        updates = {}
        title = data.get("sd_model_checkpoint")
        if title:
            profile = profile_find(title)
            if profile is None:
                from providers.selectors import profile_get

                profile_get(slug=title.strip())  # raises unknown_model naming what exists
                raise ApplicationError("unknown_model", f"No model {title!r}.")
            updates["checkpoint"] = profile
        if data.get("CLIP_stop_at_last_layers") is not None:
            updates["clip_skip"] = data["CLIP_stop_at_last_layers"]
        if updates:
            CompatOptions.objects.update_or_create(user=request.user, defaults=updates)
        return _null()


class CmdFlagsView(A1111View):
    """A1111 answers its command-line flags; Atelier has none of them, so only what is true:
    the API is on, and ``api_auth`` (every call needs credentials)."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response({"api": True, "api_auth": "(Atelier accounts)", "nowebui": False,
                         "listen": None, "port": None})


class MemoryView(A1111View):
    """Memory of this web process (``ram``: bytes) as A1111 reports its own; ``cuda`` is not
    reported here (models run in the workers)."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        try:
            pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
            free = os.sysconf("SC_AVPHYS_PAGES") * page_size
            total = pages * page_size
            ram = {"free": free, "used": total - free, "total": total}
        except (ValueError, OSError, AttributeError) as exc:
            ram = {"error": str(exc)}
        return Response({"ram": ram, "cuda": {"error": "not reported: models run in workers"}})
