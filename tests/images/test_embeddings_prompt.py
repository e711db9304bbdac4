"""Textual inversion embeddings called by name in a prompt
(docs/checkpoints.md#textual-inversion-embeddings), through POST /api/generate/ on the real
tiny diffusers model: the embedding changes the image, weights apply, ``TI hashes`` is in the
PNG; a wrong-width or pickle embedding is a 400 before anything is queued."""

import hashlib
import io

import numpy as np
import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage
from safetensors.torch import save_file

from images.infotext import hash_list_parse, parse_infotext
from images.models import GenerationRequest, Image
from images.services import generation_run
from images.services.embeddings import embeddings_for_prompt, embeddings_list
from jobs.models import Job
from providers.base import EmbeddingSpec, ProviderError
from providers.textual_inversion import embedding_widths, load_embeddings

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture
def embeddings_root(settings, tmp_path):
    """tinystyle: 2 random vectors of the demo's width 32 (A1111 ``emb_params`` layout);
    sd15style: 768 wide (SD 1.x); oldstyle.pt: a pickle embedding."""
    root = tmp_path / "embeddings"
    root.mkdir()
    gen = torch.Generator().manual_seed(3)
    save_file({"emb_params": torch.randn(2, 32, generator=gen) * 3},
              str(root / "tinystyle.safetensors"))
    save_file({"emb_params": torch.randn(1, 768, generator=gen)},
              str(root / "sd15style.safetensors"))
    (root / "oldstyle.pt").write_bytes(b"\x80\x04never unpickled")
    settings.EMBEDDING_ROOTS = [str(root)]
    return root


def run(client, capture, prompt: str):
    with capture(execute=False):
        resp = client.post("/api/generate/", {"prompt": prompt, "model": "tiny", "width": 64,
                                              "height": 64, "steps": 2, "seed": 9},
                           format="json")
    assert resp.status_code == 202, resp.content
    job = generation_run(request_id=resp.json()["id"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    image = Image.objects.get(request_id=resp.json()["id"])
    with image.file.open("rb") as fh:
        png = PILImage.open(io.BytesIO(fh.read()))
        png.load()
    return GenerationRequest.objects.get(pk=resp.json()["id"]), png


def test_an_embedding_in_the_prompt_changes_the_image(
        api_client, tiny, embeddings_root, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    sha = hashlib.sha256((embeddings_root / "tinystyle.safetensors").read_bytes()).hexdigest()

    plain_req, plain = run(api_client, capture, "a red lighthouse")
    with_req, with_emb = run(api_client, capture, "a red lighthouse, tinystyle")
    weighted_req, weighted = run(api_client, capture, "a red lighthouse, (tinystyle:1.6)")
    again_req, again = run(api_client, capture, "a red lighthouse, tinystyle")

    assert plain_req.embeddings == []
    assert with_req.embeddings == [{"name": "tinystyle", "sha256": sha,
                                    "path": str(embeddings_root / "tinystyle.safetensors")}]
    a, b, c, d = (np.asarray(x.convert("RGB"), dtype=np.int16)
                  for x in (plain, with_emb, weighted, again))
    # The random tiny model reacts weakly to its text (about 1 level in 255 per pixel here).
    assert np.abs(a - b).mean() > 0.2   # the embedding's vectors reach the UNet
    assert np.abs(b - c).mean() > 0.1   # and its weight counts
    assert np.array_equal(b, d)         # same request, same picture (loaded once, reused)

    assert "TI hashes" not in plain.text["parameters"]
    params = parse_infotext(with_emb.text["parameters"]).params  # quoted as A1111 writes it
    assert hash_list_parse(params["TI hashes"]) == [("tinystyle", sha[:12])]
    assert with_emb.text["parameters"].startswith("a red lighthouse, tinystyle\n")

    # Loaded once per pipeline: both vectors added to the tokenizer a single time.
    from providers.diffusers_local import _cache

    (entry,) = [e for e in _cache.values() if e.pipe is not None]
    vocab = entry.pipe.tokenizer.get_vocab()
    assert sorted(t for t in vocab if t.startswith("tinystyle")) == ["tinystyle", "tinystyle_1"]

    # Other vectors under the same name (the file replaced): loaded again, another picture.
    gen = torch.Generator().manual_seed(4)
    save_file({"emb_params": torch.randn(2, 32, generator=gen) * 3},
              str(embeddings_root / "tinystyle.safetensors"))
    _, replaced = run(api_client, capture, "a red lighthouse, tinystyle")
    assert np.abs(np.asarray(replaced.convert("RGB"), dtype=np.int16) - b).mean() > 0.2


def test_wrong_width_and_pickles_are_refused_before_queuing(api_client, tiny, embeddings_root):
    for prompt, code, says in (
            ("a lighthouse, sd15style", "embedding_incompatible", "'sd15style' (768 wide)"),
            ("a lighthouse", "", ""),
            ("(oldstyle:1.1), a lighthouse", "embedding_unsafe", "never loaded")):
        resp = api_client.post("/api/generate/", {"prompt": "x", "negative_prompt": prompt,
                                                  "model": "tiny"}, format="json")
        if not code:
            assert resp.status_code == 202
            continue
        assert resp.status_code == 400, resp.content
        assert resp.json()["code"] == code and says in resp.json()["message"]
    assert GenerationRequest.objects.count() == 1


def test_names_are_whole_words_and_layouts_are_read(tiny, embeddings_root, tmp_path):
    assert embeddings_for_prompt("tinystyles, tiny-tinystyle", "", tiny) == []
    assert [e["name"] for e in embeddings_for_prompt("x", "TinyStyle", tiny)] == ["tinystyle"]
    sdxl = tmp_path / "xl.safetensors"
    save_file({"clip_l": torch.zeros(4, 768), "clip_g": torch.zeros(4, 1280)}, str(sdxl))
    old = tmp_path / "old.safetensors"
    save_file({"string_to_param.*": torch.zeros(1, 1024)}, str(old))
    assert (embedding_widths(str(sdxl)), embedding_widths(str(old))) == ((768, 1280), (1024,))
    listed = {e["name"]: (e["widths"], e["vectors"], e["unsafe"]) for e in embeddings_list()}
    assert listed == {"oldstyle": ((), 0, True), "sd15style": ((768,), 1, False),
                      "tinystyle": ((32,), 2, False)}


def test_the_provider_checks_width_itself(embeddings_root):
    from providers import demo

    pipe = demo.build_demo_pipeline()
    path = embeddings_root / "sd15style.safetensors"
    spec = EmbeddingSpec(name="sd15style", path=str(path), sha256="0" * 64)
    with pytest.raises(ProviderError) as err:
        load_embeddings(pipe, [spec])
    assert err.value.code == "embedding_incompatible"
    with pytest.raises(ProviderError) as err:
        load_embeddings(pipe, [EmbeddingSpec("oldstyle", str(embeddings_root / "oldstyle.pt"),
                                             "1" * 64)])
    assert err.value.code == "embedding_unsafe"


def test_img2img_records_and_checks_embeddings_too(api_client, tiny, embeddings_root):
    from tests.support.bad_files import good_png

    def edit(prompt):
        return api_client.post("/api/edit/", {
            "prompt": prompt, "model": "tiny", "steps": 2, "strength": 0.5,
            "image": SimpleUploadedFile("src.png", good_png((64, 64)))}, format="multipart")

    bad = edit("a lighthouse, sd15style")
    assert bad.status_code == 400 and bad.json()["code"] == "embedding_incompatible"
    assert not GenerationRequest.objects.exists()
    ok = edit("a lighthouse, tinystyle")
    assert ok.status_code == 202, ok.content
    (request,) = GenerationRequest.objects.all()
    assert request.kind == "img2img"
    assert [e["name"] for e in request.embeddings] == ["tinystyle"]
