"""providers/textual_inversion.py on real diffusers pipelines: SDXL ``clip_l``/``clip_g`` go
into both encoders, names become their vector tokens, a single-encoder embedding does not fit
SDXL (docs/checkpoints.md#textual-inversion-embeddings)."""

import hashlib

import pytest
import torch
from safetensors.torch import save_file

from providers.base import EmbeddingSpec, GenerationSpec, ModelSpec, ProviderError
from providers.prompt_embeds import encode_prompts
from providers.textual_inversion import embeddings_apply, load_embeddings, prompt_with_vectors
from tests.providers.test_prompt_embeds import build_tiny_sdxl

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _spec(path, name):
    return EmbeddingSpec(name=name, path=str(path),
                         sha256=hashlib.sha256(path.read_bytes()).hexdigest())


def test_sdxl_embedding_goes_into_both_encoders(tmp_path):
    pipe = build_tiny_sdxl()
    clip_l, clip_g = torch.randn(2, 32), torch.randn(2, 32) * 2
    path = tmp_path / "xlstyle.safetensors"
    save_file({"clip_l": clip_l, "clip_g": clip_g}, str(path))
    before = encode_prompts(pipe, "a cat, xlstyle", "")["prompt_embeds"]
    spec = GenerationSpec(model=ModelSpec("sdxl", "x"), prompt="a cat, (xlstyle:1.2)",
                          negative_prompt="blurry xlstyle", embeddings=(_spec(path, "xlstyle"),))

    spec2, hashes = embeddings_apply(pipe, spec)

    assert hashes == [("xlstyle", spec.embeddings[0].sha256[:12])]
    assert spec2.prompt == "a cat, (xlstyle xlstyle_1:1.2)"
    assert spec2.negative_prompt == "blurry xlstyle xlstyle_1"
    for tok, enc, vectors in ((pipe.tokenizer, pipe.text_encoder, clip_l),
                              (pipe.tokenizer_2, pipe.text_encoder_2, clip_g)):
        ids = tok.convert_tokens_to_ids(["xlstyle", "xlstyle_1"])
        rows = enc.get_input_embeddings().weight[ids].detach()
        assert torch.allclose(rows, vectors)
    after = encode_prompts(pipe, spec2.prompt, spec2.negative_prompt)["prompt_embeds"]
    assert after.shape == before.shape and not torch.allclose(after, before)

    # Loaded once: the same spec again adds nothing.
    size = len(pipe.tokenizer)
    load_embeddings(pipe, spec.embeddings)
    assert len(pipe.tokenizer) == size


def test_a_single_encoder_embedding_does_not_fit_sdxl(tmp_path):
    pipe = build_tiny_sdxl()
    path = tmp_path / "sd1.safetensors"
    save_file({"emb_params": torch.randn(1, 32)}, str(path))
    with pytest.raises(ProviderError) as err:
        load_embeddings(pipe, [_spec(path, "sd1")])
    assert err.value.code == "embedding_incompatible" and "32+32" in err.value.message


def test_vector_tokens_only_for_whole_words():
    assert prompt_with_vectors("Style, stylex, my-style, (style:0.5)", {"style": 3}) == (
        "style style_1 style_2, stylex, my-style, (style style_1 style_2:0.5)")
    assert prompt_with_vectors("style", {"style": 1}) == "style"
