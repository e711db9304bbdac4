"""sd-prompt-reader (PyPI ``sd-prompt-reader``, the reader behind the "SD Prompt Reader" app)
reads every field of the PNG Atelier writes. Its ``ImageDataReader`` needs no display (no
tkinter import); the package pins ``pillow==10.3.0``, so it is installed with ``--no-deps``
next to ``piexif`` (its one other runtime need for this reader)."""

from PIL import Image as PILImage

from images.infotext import infotext_for_request, parse_infotext, request_params_from_infotext
from images.models import GenerationRequest
from images.pngmeta import png_bytes
from providers.models import ModelProfile

TEXT = ("portrait of an old fisherman, (wrinkles:1.25) BREAK harbour at dawn "
        "<lora:add_detail:1> <lora:epiNoiseoffset_v2:0.4:0.2>\n"
        "Negative prompt: (smooth skin:1.3), plastic\n"
        "Steps: 32, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6, Seed: 2718281828, "
        "Size: 640x832, Model hash: 15012c538f, Model: realisticVisionV51_v51VAE, "
        "Denoising strength: 0.5, Clip skip: 2, Hires upscale: 2, Hires steps: 20, "
        'Hires upscaler: Lanczos, Lora hashes: "add_detail: 7c6bad76eb54, '
        'epiNoiseoffset_v2: d1131f7207d6", Version: v1.10.1')


def test_sd_prompt_reader_reads_an_atelier_png(tmp_path):
    from sd_prompt_reader.constants import SUPPORTED_FORMATS  # noqa: F401 - no GUI import
    from sd_prompt_reader.image_data_reader import ImageDataReader

    params = request_params_from_infotext(parse_infotext(TEXT))
    ckpt = tmp_path / "realisticVisionV51_v51VAE.safetensors"
    ckpt.write_bytes(b"weights")
    loras = [{"lora_id": i, "name": x["name"], "weight": x["weight"],
              "te_weight": x["te_weight"], "sha256": f"{i:064x}", "short_hash": x["hash"]}
             for i, x in enumerate(params["loras"], start=1)]
    request = GenerationRequest(
        profile=ModelProfile(slug="rv", name="RV", model_path=str(ckpt)), kind="txt2img",
        prompt=params["prompt"], clean_prompt="", negative_prompt=params["negative_prompt"],
        width=640, height=832, steps=32, guidance_scale=6.0, seed=2718281828, loras=loras,
        sampler="DPM++ 2M", scheduler="Karras", clip_skip=2, enable_hr=True, hr_scale=2.0,
        hr_upscaler="Lanczos", hr_second_pass_steps=20, hr_denoising_strength=0.5)
    written = infotext_for_request(request, {}, seed=2718281828, width=1280, height=1664)
    path = tmp_path / "atelier.png"
    path.write_bytes(png_bytes(PILImage.new("RGB", (64, 64)), parameters=written))

    reader = ImageDataReader(str(path))
    assert reader.tool == "A1111 webUI" and reader.status.name == "READ_SUCCESS"
    assert reader.positive == params["prompt"]
    assert reader.negative == params["negative_prompt"]
    assert reader.setting == written.split("\n")[-1]  # the whole parameters line
    assert reader.parameter == {"model": "realisticVisionV51_v51VAE", "sampler": "DPM++ 2M",
                                "seed": "2718281828", "cfg": "6", "steps": "32",
                                "size": "640x832"}
    assert reader.raw == written
