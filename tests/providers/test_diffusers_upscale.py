"""diffusers_local upscaling with a configured ``sd-upscale`` pipeline: the real tiny x4
``StableDiffusionUpscalePipeline`` (random weights, built from config, CPU, no hub)."""

import numpy as np
import pytest
from PIL import Image

from providers.base import GenerationCancelled, ModelSpec, NullSink, ProviderError, UpscaleSpec
from providers.diffusers_local import DiffusersProvider, clear_pipeline_cache
from tests.providers.test_diffusers_local import RecordingSink


@pytest.fixture(scope="module")
def provider():
    clear_pipeline_cache()
    yield DiffusersProvider(device="cpu", num_threads=1)
    clear_pipeline_cache()


def source(size=(32, 32)) -> Image.Image:
    yy, xx = np.mgrid[0:size[1], 0:size[0]]
    arr = np.stack([xx * 8 % 256, yy * 8 % 256, (xx + yy) * 4 % 256], axis=-1).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def up_spec(model, *, factor=4, image=None, pipeline_type="sd-upscale", **options):
    return UpscaleSpec(
        image=image if image is not None else source(), factor=factor, upscaler="sd-x4",
        model=ModelSpec(pipeline_type=pipeline_type, model=str(model),
                        options={"steps": 2, **options}))


def pixels(img) -> np.ndarray:
    return np.asarray(img, dtype=int)


def test_x4_upscale_is_deterministic_and_reports_steps(provider, demo_upscale_model):
    sink = RecordingSink()
    out = provider.upscale(up_spec(demo_upscale_model, seed=5), sink)
    assert out.image.size == (128, 128) and out.image.mode == "RGB"
    assert sink.steps == [(1, 2), (2, 2)]
    assert out.seed == 5
    assert out.info == {"upscaler": "sd-x4", "factor": 4, "model": demo_upscale_model.name}
    again = provider.upscale(up_spec(demo_upscale_model, seed=5), NullSink())
    assert np.array_equal(pixels(out.image), pixels(again.image))
    other = provider.upscale(up_spec(demo_upscale_model, seed=6), NullSink())
    assert not np.array_equal(pixels(out.image), pixels(other.image))
    # loaded once, cached under its pipeline type like the generation pipelines
    assert ("sd-upscale", str(demo_upscale_model.resolve())) in provider.cache_info()["pipelines"]


def test_factor_two_and_odd_sizes_give_exact_output_sizes(provider, demo_upscale_model):
    out = provider.upscale(up_spec(demo_upscale_model, factor=2), NullSink())
    assert out.image.size == (64, 64)
    odd = provider.upscale(up_spec(demo_upscale_model, image=source((20, 13))), NullSink())
    assert odd.image.size == (80, 52)
    rgba = source().convert("RGBA")
    assert provider.upscale(up_spec(demo_upscale_model, image=rgba), NullSink()).image.mode == "RGB"


def test_cancel_between_steps(provider, demo_upscale_model):
    sink = RecordingSink(cancel_after=1)
    with pytest.raises(GenerationCancelled):
        provider.upscale(up_spec(demo_upscale_model, steps=3), sink)
    assert sink.steps == [(1, 3)]
    before = RecordingSink(cancel_after=0)
    with pytest.raises(GenerationCancelled):
        provider.upscale(up_spec(demo_upscale_model), before)
    assert before.steps == []


def test_wrong_pipeline_types_and_bad_requests(provider, demo_upscale_model, demo_assets):
    with pytest.raises(ProviderError) as err:  # an SD txt2img profile cannot upscale
        provider.upscale(up_spec(demo_assets["model"], pipeline_type="sd"), NullSink())
    assert err.value.code == "unsupported_pipeline" and "sd-upscale" in err.value.message
    with pytest.raises(ProviderError) as err:
        provider.upscale(UpscaleSpec(image=source(), factor=2), NullSink())
    assert err.value.code == "unsupported_pipeline"
    with pytest.raises(ProviderError) as err:  # an upscale profile cannot txt2img
        from tests.providers.test_diffusers_local import spec
        provider.generate(spec(demo_upscale_model, pipeline_type="sd-upscale"), NullSink())
    assert err.value.code == "unsupported_pipeline" and "upscale" in err.value.message
    with pytest.raises(ProviderError) as err:  # an SD folder under the upscale type
        provider.upscale(up_spec(demo_assets["model"]), NullSink())
    assert err.value.code == "unsupported_pipeline"
    for bad, code in (({"factor": 3}, "invalid_request"),
                      ({"noise_level": 10_000}, "invalid_request"),
                      ({"image": source((4, 4))}, "invalid_request")):
        with pytest.raises(ProviderError) as err:
            provider.upscale(up_spec(demo_upscale_model, **bad), NullSink())
        assert err.value.code == code


def test_latent_x2_upscaler_runs_once_for_two_and_twice_for_four(provider,
                                                                 demo_latent_upscale_model):
    sink = RecordingSink()
    spec2 = up_spec(demo_latent_upscale_model, factor=2, pipeline_type="sd-latent-upscale")
    out = provider.upscale(spec2, sink)
    assert out.image.size == (64, 64) and sink.steps == [(1, 2), (2, 2)]
    again = provider.upscale(spec2, NullSink())
    assert np.array_equal(pixels(out.image), pixels(again.image))
    sink = RecordingSink()
    spec4 = up_spec(demo_latent_upscale_model, image=source((20, 13)),
                    pipeline_type="sd-latent-upscale")
    assert provider.upscale(spec4, sink).image.size == (80, 52)
    assert sink.steps == [(1, 4), (2, 4), (3, 4), (4, 4)]  # two x2 passes of 2 steps
    with pytest.raises(GenerationCancelled):
        provider.upscale(spec4, RecordingSink(cancel_after=3))
    with pytest.raises(ProviderError) as err:  # the x2 latent folder under the x4 type
        provider.upscale(up_spec(demo_latent_upscale_model), NullSink())
    assert err.value.code == "unsupported_pipeline"


def test_models_lists_the_upscale_folder(provider, demo_upscale_model, settings):
    settings.MODELS_DIR = str(demo_upscale_model.parent)
    found = {m["name"]: m["pipeline_type"] for m in provider.models()}
    assert found[demo_upscale_model.name] == "sd-upscale"


@pytest.mark.django_db(transaction=True)
def test_upscale_api_on_an_sd_upscale_profile_through_a_real_worker(
        api_client, user, demo_upscale_model, celery_worker, settings):
    import io
    from pathlib import Path

    from django.core.files.base import ContentFile

    from images.models import Image as ImageRow
    from jobs.models import Job
    from tests.factories import ImageFactory, ModelProfileFactory
    from tests.support.wait import wait_for_job

    ModelProfileFactory(slug="x4", provider="diffusers_local", pipeline_type="sd-upscale",
                        model_path=str(demo_upscale_model), options={"steps": 2},
                        is_default=False)
    buf = io.BytesIO()
    source().save(buf, format="PNG")
    src = ImageFactory(user=user, width=32, height=32, seed=3,
                       file=ContentFile(buf.getvalue(), name="src.png"))
    resp = api_client.post("/api/upscale/", {"image_id": src.pk, "factor": 4, "model": "x4",
                                             "upscaler": "sd-x4"}, format="json")
    assert resp.status_code == 202, resp.content
    job = wait_for_job(resp.json()["job"], timeout=120)
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.kind == "upscale" and job.progress == 1.0
    out = ImageRow.objects.get(request_id=resp.json()["id"])
    assert (out.kind, out.source_id, out.width, out.height) == ("upscale", src.pk, 128, 128)
    with Image.open(Path(settings.MEDIA_ROOT) / out.file.name) as png:
        assert png.size == (128, 128)
        assert "Postprocess upscale by: 4, Postprocess upscaler: sd-x4" in png.text["parameters"]


@pytest.mark.django_db
def test_generate_and_edit_on_an_upscale_profile_are_400_before_queuing(api_client, user):
    from jobs.models import Job
    from tests.factories import ImageFactory, ModelProfileFactory

    ModelProfileFactory(slug="x4", provider="diffusers_local", pipeline_type="sd-upscale",
                        model_path="/nonexistent", is_default=False)
    resp = api_client.post("/api/generate/", {"prompt": "a fox", "model": "x4"}, format="json")
    assert resp.status_code == 400
    assert resp.json()["fields"]["model"] == ["Model 'x4' is an upscaler; use POST /api/upscale/."]
    src = ImageFactory(user=user)
    resp = api_client.post("/api/edit/", {"image_id": src.pk, "prompt": "a fox", "model": "x4"},
                           format="json")
    assert resp.status_code == 400 and "upscaler" in resp.json()["message"]
    assert not Job.objects.exists()
