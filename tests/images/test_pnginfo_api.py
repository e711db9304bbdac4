"""``POST /api/png-info/``: images of A1111, ComfyUI, InvokeAI, NovelAI and Fooocus, written
here from each tool's documented metadata format (docs/infotext.md#png-info), read back with
the real sd-parsers; resources resolved against the library; bad uploads refused."""

import hashlib
import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage
from PIL.PngImagePlugin import PngInfo

from images.infotext import file_sha256
from tests.factories import LoraFactory, ModelProfileFactory

URL = "/api/png-info/"
CORPUS = Path(__file__).resolve().parents[1] / "data" / "infotexts"
BY_HASH = "https://civitai.com/api/v1/model-versions/by-hash/"


def _png(chunks: dict[str, str], size=(64, 48)) -> bytes:
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    buf = io.BytesIO()
    PILImage.new("RGB", size, (40, 80, 120)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def _post(client, data: bytes, name="image.png"):
    return client.post(URL, {"image": SimpleUploadedFile(name, data)}, format="multipart")


# ----------------------------------------------------------------------------- A1111
@pytest.mark.django_db
def test_a1111_png_fills_every_field_and_resolves_the_library(api_client, tmp_path):
    text = (CORPUS / "23-lora-in-negative-weights.txt").read_text(encoding="utf-8")
    known = LoraFactory(name="add_detail", sha256="ab" * 32, autov3="7c6bad76eb54" + "0" * 52)
    ckpt = tmp_path / "realisticVisionV51_v51VAE.safetensors"
    ckpt.write_bytes(b"checkpoint")
    ModelProfileFactory(slug="rv51", name="Realistic Vision", provider="diffusers",
                        pipeline_type="sd", model_path=str(ckpt))
    response = _post(api_client, _png({"parameters": text}))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["generator"] == "AUTOMATIC1111" and body["raw"] == text
    p = body["parameters"]
    assert p["prompt"].startswith("portrait of an old fisherman") and "<lora:add_detail:1>" in \
        p["prompt"]
    assert p["negative_prompt"] == "(smooth skin:1.3), plastic, [cartoon]"
    assert (p["steps"], p["sampler"], p["scheduler"], p["cfg_scale"], p["seed"]) == \
        (32, "DPM++ 2M", "Karras", 6.0, 2718281828)
    assert (p["width"], p["height"], p["clip_skip"]) == (640, 832, 2)
    assert (p["enable_hr"], p["hr_scale"], p["hr_second_pass_steps"], p["hr_upscaler"],
            p["denoising_strength"]) == (True, 2.0, 20, "Lanczos", 0.5)
    assert (p["model"], p["model_hash"]) == ("realisticVisionV51_v51VAE", "15012c538f")
    assert [(x["name"], x["weight"], x["hash"]) for x in p["loras"]] == [
        ("add_detail", 1.0, "7c6bad76eb54"), ("epiNoiseoffset_v2", 0.4, "d1131f7207d6")]
    model = body["resources"]["model"]
    assert model["found"] is True and model["profile"] == "rv51"  # by file stem
    assert model["civitai_lookup_url"] == BY_HASH + "15012c538f"
    loras = body["resources"]["loras"]
    assert loras[0] == {"name": "add_detail", "weight": 1.0, "hash": "7c6bad76eb54",
                        "found": True, "lora_id": known.pk,
                        "civitai_lookup_url": BY_HASH + "7c6bad76eb54"}
    assert loras[1]["found"] is False and loras[1]["lora_id"] is None
    assert loras[1]["civitai_lookup_url"] == BY_HASH + "d1131f7207d6"
    assert body["request"] == {  # what the generate form is filled with
        "prompt": p["prompt"], "negative_prompt": p["negative_prompt"], "steps": 32,
        "sampler": "DPM++ 2M", "scheduler": "Karras", "guidance_scale": 6.0,
        "seed": 2718281828, "width": 640, "height": 832, "clip_skip": 2, "model": "rv51",
        "enable_hr": True, "hr_scale": 2.0, "hr_upscaler": "Lanczos",
        "hr_second_pass_steps": 20, "denoising_strength": 0.5}


@pytest.mark.django_db
def test_model_found_by_a_hash_atelier_computed_before(api_client, tmp_path):
    ckpt = tmp_path / "renamed-on-disk.safetensors"
    ckpt.write_bytes(b"the same weights")
    autov2 = hashlib.sha256(b"the same weights").hexdigest()[:10]
    ModelProfileFactory(slug="mine", name="Mine", model_path=str(ckpt))
    text = (f"a cat\nSteps: 20, Sampler: Euler, Schedule type: Automatic, CFG scale: 7, Seed: 1, "
            f"Size: 512x512, Model hash: {autov2}, Model: someone-elses-name")
    body = _post(api_client, _png({"parameters": text})).json()
    assert body["resources"]["model"]["found"] is False  # never hashed: no file read here
    file_sha256(str(ckpt))  # what writing an image of this profile does once
    body = _post(api_client, _png({"parameters": text})).json()
    assert body["resources"]["model"]["found"] is True
    assert body["resources"]["model"]["profile"] == "mine"


@pytest.mark.django_db
def test_a1111_jpeg_with_exif_user_comment(api_client):
    text = (CORPUS / "02-dpmpp-2m-karras-negative-clip-skip.txt").read_text(encoding="utf-8")
    img = PILImage.new("RGB", (32, 32))
    exif = img.getexif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + text.encode("utf-16-be")  # A1111 (piexif)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    body = _post(api_client, buf.getvalue(), "image.jpg").json()
    assert body["generator"] == "AUTOMATIC1111"
    assert (body["parameters"]["sampler"], body["parameters"]["scheduler"],
            body["parameters"]["clip_skip"]) == ("DPM++ 2M", "Karras", 2)


@pytest.mark.django_db
def test_an_infotext_without_sampler_is_still_read(api_client):
    # sd-parsers wants a Sampler field; A1111's own paste does not.
    text = "a cat\nSteps: 12, CFG scale: 4, Seed: 77, Size: 64x64"
    body = _post(api_client, _png({"parameters": text})).json()
    assert body["generator"] == "AUTOMATIC1111"
    assert (body["parameters"]["steps"], body["parameters"]["seed"]) == (12, 77)


# ----------------------------------------------------------------------------- others
def _comfyui_chunks() -> dict[str, str]:
    """A ComfyUI txt2img graph with a LoRA: the API ``prompt`` graph and the editor
    ``workflow`` (links ``[id, from node, from slot, to node, to slot, type]``)."""
    prompt = {
        "4": {"class_type": "CheckpointLoaderSimple",
              "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
        "10": {"class_type": "LoraLoader",
               "inputs": {"lora_name": "pixel-art-xl.safetensors", "strength_model": 0.8,
                          "strength_clip": 0.8, "model": ["4", 0], "clip": ["4", 1]}},
        "6": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "pixel art, a cozy cabin in the snow", "clip": ["10", 1]}},
        "7": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "photo, realistic", "clip": ["10", 1]}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": 1024, "height": 768, "batch_size": 1}},
        "3": {"class_type": "KSampler",
              "inputs": {"seed": 4011, "steps": 30, "cfg": 7.0, "sampler_name": "dpmpp_2m",
                         "scheduler": "karras", "denoise": 1.0, "model": ["10", 0],
                         "positive": ["6", 0], "negative": ["7", 0],
                         "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI",
                                                    "images": ["8", 0]}},
    }
    links = [[1, 4, 0, 10, 0, "MODEL"], [2, 4, 1, 10, 1, "CLIP"], [3, 10, 1, 6, 0, "CLIP"],
             [4, 10, 1, 7, 0, "CLIP"], [5, 10, 0, 3, 0, "MODEL"],
             [6, 6, 0, 3, 1, "CONDITIONING"], [7, 7, 0, 3, 2, "CONDITIONING"],
             [8, 5, 0, 3, 3, "LATENT"], [9, 3, 0, 8, 0, "LATENT"], [10, 4, 2, 8, 1, "VAE"],
             [11, 8, 0, 9, 0, "IMAGE"]]
    workflow = {"last_node_id": 10, "last_link_id": 11, "links": links, "nodes": [],
                "version": 0.4}
    return {"prompt": json.dumps(prompt), "workflow": json.dumps(workflow)}


@pytest.mark.django_db
def test_comfyui_png(api_client):
    lora = LoraFactory(name="pixel-art-xl")
    body = _post(api_client, _png(_comfyui_chunks())).json()
    assert body["generator"] == "ComfyUI"
    p = body["parameters"]
    assert p["prompt"] == "pixel art, a cozy cabin in the snow"
    assert p["negative_prompt"] == "photo, realistic"
    assert (p["steps"], p["sampler"], p["scheduler"], p["cfg_scale"], p["seed"]) == \
        (30, "DPM++ 2M", "Karras", 7.0, 4011)
    assert (p["width"], p["height"], p["model"]) == (1024, 768, "sd_xl_base_1.0")
    assert [(x["name"], x["weight"]) for x in p["loras"]] == [("pixel-art-xl", 0.8)]
    assert body["resources"]["loras"][0]["lora_id"] == lora.pk
    assert body["resources"]["model"]["found"] is False
    assert json.loads(body["raw"])["prompt"]


@pytest.mark.django_db
def test_invokeai_png(api_client):
    meta = {"generation_mode": "txt2img", "positive_prompt": "a lighthouse, oil painting",
            "negative_prompt": "text, watermark", "width": 768, "height": 512, "seed": 321,
            "rand_device": "cpu", "cfg_scale": 6.5, "steps": 25, "scheduler": "dpmpp_2m_k",
            "clip_skip": 1,
            "model": {"model_name": "stable-diffusion-v1-5", "base_model": "sd-1",
                      "model_type": "main"},
            "loras": [{"lora": {"model_name": "add_detail", "base_model": "sd-1"},
                       "weight": 0.75}],
            "app_version": "3.4.0"}
    body = _post(api_client, _png({"invokeai_metadata": json.dumps(meta)})).json()
    assert body["generator"] == "InvokeAI"
    p = body["parameters"]
    assert (p["prompt"], p["negative_prompt"]) == ("a lighthouse, oil painting",
                                                   "text, watermark")
    assert (p["steps"], p["sampler"], p["scheduler"], p["cfg_scale"], p["seed"]) == \
        (25, "DPM++ 2M", "Karras", 6.5, 321)
    assert (p["width"], p["height"], p["clip_skip"]) == (768, 512, 2)  # 1 skipped layer
    assert p["model"] == "stable-diffusion-v1-5"
    assert [(x["name"], x["weight"]) for x in p["loras"]] == [("add_detail", 0.75)]


@pytest.mark.django_db
def test_invokeai_4_model_record(api_client):
    meta = {"positive_prompt": "a fox", "negative_prompt": "", "width": 512, "height": 512,
            "seed": 5, "cfg_scale": 7, "steps": 20, "scheduler": "euler_a",
            "model": {"key": "1f2e", "hash": "blake3:abcd", "name": "dreamshaper_8",
                      "base": "sd-1", "type": "main"},
            "loras": [{"model": {"key": "9a", "hash": "blake3:ef", "name": "fur_detail",
                                 "base": "sd-1", "type": "lora"}, "weight": 0.5}]}
    p = _post(api_client, _png({"invokeai_metadata": json.dumps(meta)})).json()["parameters"]
    assert (p["sampler"], p["scheduler"], p["model"]) == ("Euler a", "", "dreamshaper_8")
    assert [(x["name"], x["weight"]) for x in p["loras"]] == [("fur_detail", 0.5)]


@pytest.mark.django_db
def test_novelai_png(api_client):
    comment = {"prompt": "1girl, silver hair, night sky", "steps": 28, "height": 1216,
               "width": 832, "scale": 5.0, "uncond_scale": 1.0, "cfg_rescale": 0.0,
               "seed": 2210, "n_samples": 1, "noise_schedule": "karras",
               "sampler": "k_euler_ancestral", "uc": "lowres, bad anatomy"}
    chunks = {"Title": "NovelAI generated image", "Description": "1girl, silver hair, night sky",
              "Software": "NovelAI", "Source": "Stable Diffusion XL C1E1DE52",
              "Comment": json.dumps(comment)}
    body = _post(api_client, _png(chunks)).json()
    assert body["generator"] == "NovelAI"
    p = body["parameters"]
    assert (p["prompt"], p["negative_prompt"]) == ("1girl, silver hair, night sky",
                                                   "lowres, bad anatomy")
    assert (p["steps"], p["sampler"], p["scheduler"], p["cfg_scale"], p["seed"]) == \
        (28, "Euler a", "Karras", 5.0, 2210)
    assert (p["width"], p["height"]) == (832, 1216)
    assert (p["model"], p["model_hash"]) == ("Stable Diffusion XL", "C1E1DE52")


@pytest.mark.django_db
def test_fooocus_png(api_client):
    params = {"adm_guidance": "(1.5, 0.8, 0.3)", "base_model": "juggernautXL_v8Rundiffusion",
              "base_model_hash": "aeb7e9e689", "guidance_scale": 4, "negative_prompt": "",
              "performance": "Speed", "prompt": "a red fox in the snow",
              "refiner_model": "None", "resolution": "(1152, 896)",
              "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras", "seed": "1234",
              "sharpness": 2, "steps": 30, "styles": "['Fooocus V2']",
              "lora_combined_1": "sd_xl_offset_example-lora_1.0.safetensors : 0.1",
              "metadata_scheme": "fooocus", "version": "Fooocus v2.5.5"}
    body = _post(api_client, _png({"parameters": json.dumps(params),
                                   "fooocus_scheme": "fooocus"})).json()
    assert body["generator"] == "Fooocus"
    p = body["parameters"]
    assert (p["prompt"], p["negative_prompt"]) == ("a red fox in the snow", "")
    assert (p["steps"], p["sampler"], p["scheduler"], p["cfg_scale"], p["seed"]) == \
        (30, "DPM++ 2M SDE", "Karras", 4.0, 1234)
    assert (p["width"], p["height"]) == (1152, 896)
    assert (p["model"], p["model_hash"]) == ("juggernautXL_v8Rundiffusion", "aeb7e9e689")
    assert [(x["name"], x["weight"]) for x in p["loras"]] == [
        ("sd_xl_offset_example-lora_1.0", 0.1)]
    assert body["resources"]["model"]["civitai_lookup_url"] == BY_HASH + "aeb7e9e689"


# ----------------------------------------------------------------------------- edges
@pytest.mark.django_db
def test_an_image_without_parameters(api_client):
    response = _post(api_client, _png({}))
    assert response.status_code == 200
    body = response.json()
    assert body["generator"] is None and body["parameters"] == {} and body["message"]
    assert body["resources"] == {"model": None, "vae": None, "loras": []}
    assert body["request"] == {}


@pytest.mark.django_db
@pytest.mark.parametrize("data", [b"not an image at all", b"",
                                  _png({"parameters": "x"})[:60]])  # truncated PNG
def test_a_file_that_is_not_a_readable_image_is_400(api_client, data):
    response = _post(api_client, data)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_image" and body["fields"] == {"image": ["Not a readable "
                                                                           "image."]}


@pytest.mark.django_db
def test_pixel_budget_and_byte_limit(api_client, settings):
    settings.REQUEST_MAX_PIXELS = 64 * 48 - 1
    response = _post(api_client, _png({}))
    assert (response.status_code, response.json()["code"]) == (400, "too_many_pixels")
    settings.REQUEST_MAX_PIXELS = 10**9
    settings.EDIT_UPLOAD_MAX_BYTES = 10
    response = _post(api_client, _png({}))
    assert (response.status_code, response.json()["code"]) == (400, "image_too_large")


@pytest.mark.django_db
def test_no_file_is_400_invalid_and_anonymous_is_401(api_client, anon_client):
    response = api_client.post(URL, {}, format="multipart")
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert anon_client.post(URL, {"image": SimpleUploadedFile("a.png", _png({}))},
                            format="multipart").status_code == 401


@pytest.mark.django_db
def test_throttled_per_user(api_client, settings):
    from django.core.cache import cache

    cache.clear()
    settings.THROTTLE_PNG_INFO_RATE = "2/min"
    codes = [_post(api_client, _png({})).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    cache.clear()


def test_the_schema_lists_the_errors():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/png-info/"]["post"]
    assert {"400", "401", "429"} <= set(operation["responses"])
    assert "multipart/form-data" in operation["requestBody"]["content"]


@pytest.mark.django_db
def test_vae_resolved_in_the_vae_folder(api_client, settings, tmp_path):
    text = (CORPUS / "16-unipc-vae.txt").read_text(encoding="utf-8")
    settings.VAE_DIR = str(tmp_path / "VAE")
    body = _post(api_client, _png({"parameters": text})).json()
    assert body["resources"]["vae"] == {
        "name": "vae-ft-mse-840000-ema-pruned.safetensors", "hash": "735e4c3a44",
        "found": False, "civitai_lookup_url": BY_HASH + "735e4c3a44"}
    assert "vae" not in body["request"]  # generate would refuse a VAE Atelier does not have
    (tmp_path / "VAE").mkdir()
    (tmp_path / "VAE" / "vae-ft-mse-840000-ema-pruned.safetensors").write_bytes(b"weights")
    body = _post(api_client, _png({"parameters": text})).json()
    assert body["resources"]["vae"]["found"] is True
    assert body["request"]["vae"] == "vae-ft-mse-840000-ema-pruned.safetensors"
