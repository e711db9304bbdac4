"""``/sdapi/v1/``: the A1111 API (see compat/a1111/views*.py and docs/clients.md)."""

from django.urls import path

from . import views as work
from . import views_info as info

app_name = "a1111"
urlpatterns = [
    path("txt2img", work.Txt2ImgView.as_view(), name="txt2img"),
    path("img2img", work.Img2ImgView.as_view(), name="img2img"),
    path("extra-single-image", work.ExtraSingleImageView.as_view(), name="extra-single-image"),
    path("png-info", work.PngInfoView.as_view(), name="png-info"),
    path("progress", work.ProgressView.as_view(), name="progress"),
    path("interrupt", work.InterruptView.as_view(), name="interrupt"),
    path("skip", work.SkipView.as_view(), name="skip"),
    path("sd-models", info.SdModelsView.as_view(), name="sd-models"),
    path("sd-vae", info.SdVaeView.as_view(), name="sd-vae"),
    path("loras", info.LorasView.as_view(), name="loras"),
    path("refresh-loras", info.RefreshView.as_view(), name="refresh-loras"),
    path("refresh-checkpoints", info.RefreshView.as_view(), name="refresh-checkpoints"),
    path("refresh-vae", info.RefreshView.as_view(), name="refresh-vae"),
    path("embeddings", info.EmbeddingsView.as_view(), name="embeddings"),
    path("samplers", info.SamplersView.as_view(), name="samplers"),
    path("schedulers", info.SchedulersView.as_view(), name="schedulers"),
    path("upscalers", info.UpscalersView.as_view(), name="upscalers"),
    path("latent-upscale-modes", info.LatentUpscaleModesView.as_view(),
         name="latent-upscale-modes"),
    path("prompt-styles", info.PromptStylesView.as_view(), name="prompt-styles"),
    path("hypernetworks", info.EmptyListView.as_view(), name="hypernetworks"),
    path("face-restorers", info.EmptyListView.as_view(), name="face-restorers"),
    path("realesrgan-models", info.EmptyListView.as_view(), name="realesrgan-models"),
    path("extensions", info.EmptyListView.as_view(), name="extensions"),
    path("scripts", info.ScriptsView.as_view(), name="scripts"),
    path("options", info.OptionsView.as_view(), name="options"),
    path("cmd-flags", info.CmdFlagsView.as_view(), name="cmd-flags"),
    path("memory", info.MemoryView.as_view(), name="memory"),
]
