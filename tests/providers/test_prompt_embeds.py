"""Prompt embeddings as A1111 computes them (providers/prompt_embeds.py), on real diffusers
pipelines: the tiny demo SD model and a tiny SDXL pipeline built the same way (random weights,
byte-level CLIP tokenizer: one token per character, ``</w>`` on a word's last one).

Expected values follow docs/prompt-syntax.md#embeddings: 75-token chunks between BOS and EOS,
BREAK starts a chunk, comma backtrack of 20 tokens, weights scale the encoder output and the
chunk mean is restored, the shorter prompt is padded with empty-prompt chunks.
"""

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from providers.prompt_embeds import (  # noqa: E402
    PromptEmbedsUnsupported,
    encode_prompts,
    prompt_chunks,
    prompt_embeds_supported,
)


@pytest.fixture(scope="module")
def sd():
    from providers.demo import build_demo_pipeline

    return build_demo_pipeline()


def build_tiny_sdxl():
    """A StableDiffusionXLPipeline of the demo's size: two 32-wide CLIP encoders (the second
    with a projection and OpenCLIP's pad token "!", id 0), cross-attention 64."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
    )

    from providers.demo import _byte_level_vocab, build_demo_tokenizer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4,
            out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
            use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=80, cross_attention_dim=64)
        vae = AutoencoderKL(block_out_channels=(32, 64), in_channels=3, out_channels=3,
                            down_block_types=("DownEncoderBlock2D",) * 2,
                            up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4,
                            sample_size=64)
        tok = build_demo_tokenizer()
        tok2 = CLIPTokenizer(vocab=_byte_level_vocab(), merges=[], model_max_length=77,
                             pad_token="!")
        cfg = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4,
                   num_hidden_layers=5, max_position_embeddings=77, projection_dim=32,
                   vocab_size=len(tok), bos_token_id=tok.bos_token_id,
                   eos_token_id=tok.eos_token_id, pad_token_id=1)
        scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                           beta_schedule="scaled_linear",
                                           timestep_spacing="leading", steps_offset=1)
        return StableDiffusionXLPipeline(
            vae=vae, text_encoder=CLIPTextModel(CLIPTextConfig(**cfg)),
            text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**cfg)), tokenizer=tok,
            tokenizer_2=tok2, unet=unet, scheduler=scheduler)


@pytest.fixture(scope="module")
def sdxl():
    return build_tiny_sdxl()


def ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def content(chunk, tokenizer):
    """The prompt tokens of a chunk: between BOS and the first EOS."""
    body = chunk.tokens[1:]
    return body[:body.index(tokenizer.eos_token_id)]


def image(pipe, kwargs, seed=7):
    out = pipe(**kwargs, num_inference_steps=2, height=64, width=64, guidance_scale=5.0,
               generator=torch.Generator().manual_seed(seed), output_type="np")
    return out.images[0]


# ----------------------------------------------------------------------------- chunks
def test_200_token_prompt_is_not_truncated(sd):
    prompt = " ".join(["a"] * 199 + ["b"])
    tokens = ids(sd.tokenizer, prompt)
    assert len(tokens) == 200
    chunks = prompt_chunks(sd.tokenizer, prompt)
    assert len(chunks) == 3
    assert all(len(c.tokens) == 77 and len(c.multipliers) == 77 for c in chunks)
    assert all(c.tokens[0] == sd.tokenizer.bos_token_id for c in chunks)
    assert sum((content(c, sd.tokenizer) for c in chunks), []) == tokens

    out = encode_prompts(sd, prompt, "")
    assert out["prompt_embeds"].shape == (1, 3 * 77, 32)
    assert out["negative_prompt_embeds"].shape == (1, 3 * 77, 32)
    # The 200th token reaches the conditioning: changing it changes the third chunk only.
    other = encode_prompts(sd, " ".join(["a"] * 199 + ["c"]), "")["prompt_embeds"]
    assert torch.equal(out["prompt_embeds"][:, :154], other[:, :154])
    assert not torch.equal(out["prompt_embeds"][:, 154:], other[:, 154:])


def test_diffusers_alone_would_truncate(sd):
    prompt = " ".join(["a"] * 200)
    embeds, _ = sd.encode_prompt(prompt, "cpu", 1, False)
    assert embeds.shape[1] == 77  # what the issue reports: the rest is dropped
    assert encode_prompts(sd, prompt, "")["prompt_embeds"].shape[1] == 231


def test_break_starts_a_chunk(sd):
    chunks = prompt_chunks(sd.tokenizer, "a cat BREAK a dog")
    assert len(chunks) == 2
    assert content(chunks[0], sd.tokenizer) == ids(sd.tokenizer, "a cat")
    assert content(chunks[1], sd.tokenizer) == ids(sd.tokenizer, "a dog")
    assert encode_prompts(sd, "a cat BREAK a dog", "")["prompt_embeds"].shape == (1, 154, 32)
    assert encode_prompts(sd, "a cat a dog", "")["prompt_embeds"].shape == (1, 77, 32)
    # A BREAK inside brackets is the word BREAK (A1111): no new chunk.
    assert len(prompt_chunks(sd.tokenizer, "(a cat BREAK a dog)")) == 1


def test_empty_prompt_and_lone_break(sd):
    assert len(prompt_chunks(sd.tokenizer, "")) == 1
    assert len(prompt_chunks(sd.tokenizer, "BREAK")) == 1  # an empty chunk, then nothing
    assert len(prompt_chunks(sd.tokenizer, "BREAK a")) == 2


def test_text_after_a_late_comma_moves_to_the_next_chunk(sd):
    prompt = " ".join(["a"] * 70) + ", " + " ".join(["b"] * 10)
    a, comma, b = ids(sd.tokenizer, "a")[0], ids(sd.tokenizer, ",")[0], ids(sd.tokenizer, "b")[0]
    first, second = prompt_chunks(sd.tokenizer, prompt)
    assert content(first, sd.tokenizer) == [a] * 70 + [comma]
    assert content(second, sd.tokenizer) == [b] * 10
    # Without the backtrack (A1111 setting 0) the chunk is filled to 75 tokens.
    first, second = prompt_chunks(sd.tokenizer, prompt, comma_backtrack=0)
    assert content(first, sd.tokenizer) == [a] * 70 + [comma] + [b] * 4
    assert content(second, sd.tokenizer) == [b] * 6


def test_multipliers_follow_the_weights(sd):
    (chunk,) = prompt_chunks(sd.tokenizer, "a (cat:1.5) [dog]")
    n_a, n_cat, n_dog = (len(ids(sd.tokenizer, t)) for t in ("a ", "cat", "dog"))
    assert chunk.multipliers[0] == 1.0
    body = chunk.multipliers[1:]
    assert body[:n_a] == [1.0] * n_a
    assert body[n_a:n_a + n_cat] == [1.5] * n_cat
    assert ids(sd.tokenizer, " ") == []  # the space between is no token
    assert body[n_a + n_cat:n_a + n_cat + n_dog] == pytest.approx([1 / 1.1] * n_dog)
    assert body[n_a + n_cat + n_dog:] == [1.0] * (76 - n_a - n_cat - n_dog)
    assert chunk.multipliers[-1] == 1.0


# ----------------------------------------------------------------------------- embeddings
def test_unweighted_short_prompt_matches_diffusers(sd):
    out = encode_prompts(sd, "a cat", "blurry")
    embeds, negative = sd.encode_prompt("a cat", "cpu", 1, True, "blurry")
    assert torch.equal(out["prompt_embeds"], embeds)
    assert torch.equal(out["negative_prompt_embeds"], negative)


def test_weight_changes_embeddings_and_image(sd):
    plain = encode_prompts(sd, "a cat on a hill", "")
    weighted = encode_prompts(sd, "a (cat:1.5) on a hill", "")
    assert plain["prompt_embeds"].shape == weighted["prompt_embeds"].shape
    assert not torch.equal(plain["prompt_embeds"], weighted["prompt_embeds"])
    first = image(sd, weighted)
    assert (abs(first - image(sd, plain))).max() > 0
    assert (first == image(sd, weighted)).all()  # same weights, same seed: same pixels


def test_emphasis_scales_tokens_and_restores_the_mean(sd):
    """z * multipliers, rescaled to the unweighted mean (A1111 "Original" emphasis). The demo's
    final layer norm has zero bias (every token's mean is ~0); a trained one has not, so the
    check runs on a copy with a bias, as the mean is then well defined."""
    import copy

    pipe = copy.copy(sd)
    pipe.text_encoder = copy.deepcopy(sd.text_encoder)
    with torch.no_grad():
        pipe.text_encoder.final_layer_norm.bias.fill_(0.5)
    (chunk,) = prompt_chunks(pipe.tokenizer, "a (cat:1.5) [dog]")
    with torch.no_grad():
        z = pipe.text_encoder(torch.tensor([chunk.tokens])).last_hidden_state
    m = torch.tensor(chunk.multipliers).reshape(1, -1, 1)
    expected = z * m * (z.mean() / (z * m).mean())
    got = encode_prompts(pipe, "a (cat:1.5) [dog]", "")["prompt_embeds"]
    assert torch.allclose(got, expected, atol=1e-6)
    assert float(got.mean()) == pytest.approx(float(z.mean()), rel=1e-5)


def test_negative_and_positive_are_padded_to_the_same_length(sd):
    long = " ".join(["a"] * 200)
    empty = encode_prompts(sd, "", "")["prompt_embeds"]
    out = encode_prompts(sd, "a cat", long)
    assert out["prompt_embeds"].shape == out["negative_prompt_embeds"].shape == (1, 231, 32)
    # The short prompt keeps its own first chunk; the rest is the empty prompt's encoding.
    assert torch.equal(out["prompt_embeds"][:, :77], encode_prompts(sd, "a cat", "")[
        "prompt_embeds"])
    assert torch.equal(out["prompt_embeds"][:, 77:154], empty)
    assert torch.equal(out["prompt_embeds"][:, 154:], empty)
    flipped = encode_prompts(sd, long, "a cat")
    assert flipped["negative_prompt_embeds"].shape == (1, 231, 32)
    assert torch.equal(flipped["negative_prompt_embeds"][:, 77:154], empty)
    image(sd, out)  # the pipeline accepts the padded pair


def test_clip_skip_takes_an_earlier_layer_through_the_final_norm(sd):
    (chunk,) = prompt_chunks(sd.tokenizer, "a cat")
    with torch.no_grad():
        hidden = sd.text_encoder(torch.tensor([chunk.tokens]),
                                 output_hidden_states=True).hidden_states
        expected = sd.text_encoder.final_layer_norm(hidden[-2])
    two = encode_prompts(sd, "a cat", "", clip_skip=2)["prompt_embeds"]
    assert torch.equal(two, expected)
    assert not torch.equal(two, encode_prompts(sd, "a cat", "", clip_skip=1)["prompt_embeds"])
    assert encode_prompts(sd, "a cat", "", clip_skip=5)["prompt_embeds"].shape == (1, 77, 32)


@pytest.mark.parametrize("clip_skip", [0, 6, -1])
def test_clip_skip_out_of_range(sd, clip_skip):
    with pytest.raises(ValueError, match="clip_skip"):
        encode_prompts(sd, "a cat", "", clip_skip=clip_skip)


def test_bad_attention_weight_is_a_syntax_error(sd):
    from images.prompt import PromptSyntaxError

    with pytest.raises(PromptSyntaxError):
        encode_prompts(sd, "(cat:1.2.3)", "")


# ----------------------------------------------------------------------------- SDXL
def test_sdxl_matches_diffusers_for_a_plain_prompt(sdxl):
    out = encode_prompts(sdxl, "a cat", "blurry")
    embeds, negative, pooled, negative_pooled = sdxl.encode_prompt(
        "a cat", device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True,
        negative_prompt="blurry")
    assert out["prompt_embeds"].shape == (1, 77, 64)
    assert torch.equal(out["prompt_embeds"], embeds)
    assert torch.equal(out["negative_prompt_embeds"], negative)
    assert torch.allclose(out["pooled_prompt_embeds"], pooled, atol=1e-6)  # batch of 2 vs 1
    assert torch.equal(out["negative_pooled_prompt_embeds"], negative_pooled)


def test_sdxl_long_prompt_weights_and_empty_negative(sdxl):
    long = " ".join(["a"] * 140) + " (cat:1.4) BREAK dog"  # 143 tokens, BREAK, 3
    out = encode_prompts(sdxl, long, "")
    assert out["prompt_embeds"].shape == (1, 3 * 77, 64)
    assert out["negative_prompt_embeds"].shape == (1, 3 * 77, 64)
    assert out["pooled_prompt_embeds"].shape == (1, 32)
    # An empty SDXL negative prompt is zeros (A1111), then empty-prompt padding chunks.
    assert not out["negative_prompt_embeds"][:, :77].any()
    assert not out["negative_pooled_prompt_embeds"].any()
    assert out["negative_prompt_embeds"][:, 77:].abs().sum() > 0
    # Clip skip is ignored on SDXL, as A1111 does by default.
    assert torch.equal(encode_prompts(sdxl, "a cat", "", clip_skip=2)["prompt_embeds"],
                       encode_prompts(sdxl, "a cat", "")["prompt_embeds"])
    assert image(sdxl, out).shape == (64, 64, 3)


def test_openclip_tokenizer_pads_with_its_pad_token(sdxl):
    (chunk,) = prompt_chunks(sdxl.tokenizer_2, "a cat")
    end = chunk.tokens.index(sdxl.tokenizer_2.eos_token_id)
    assert set(chunk.tokens[end + 1:]) == {sdxl.tokenizer_2.pad_token_id} == {0}
    (chunk,) = prompt_chunks(sdxl.tokenizer, "a cat")  # CLIP-L: EOS all the way
    end = chunk.tokens.index(sdxl.tokenizer.eos_token_id)
    assert set(chunk.tokens[end:]) == {sdxl.tokenizer.eos_token_id}


def test_pipelines_with_a_t5_encoder_are_not_handled(sd):
    from transformers import T5Config, T5EncoderModel

    t5 = T5EncoderModel(T5Config(vocab_size=64, d_model=8, d_ff=16, num_layers=1, num_heads=1,
                                 d_kv=8))
    flux_like = SimpleNamespace(text_encoder=sd.text_encoder, tokenizer=sd.tokenizer,
                                text_encoder_2=t5, tokenizer_2=sd.tokenizer)
    assert prompt_embeds_supported(sd)
    assert not prompt_embeds_supported(flux_like)
    with pytest.raises(PromptEmbedsUnsupported, match="T5EncoderModel"):
        encode_prompts(flux_like, "a cat", "")


def test_sdxl_weights_each_encoder_on_its_own_and_pools_the_first_chunk(sdxl):
    prompt = "a (cat:1.5) " + " ".join(["b"] * 90)  # 2 chunks
    out = encode_prompts(sdxl, prompt, "x")
    expected = []
    for tokenizer, encoder in ((sdxl.tokenizer, sdxl.text_encoder),
                               (sdxl.tokenizer_2, sdxl.text_encoder_2)):
        parts = []
        for chunk in prompt_chunks(tokenizer, prompt):
            with torch.no_grad():
                z = encoder(torch.tensor([chunk.tokens]), output_hidden_states=True
                            ).hidden_states[-2]
            m = torch.tensor(chunk.multipliers).reshape(1, -1, 1)
            parts.append(z * m * (z.mean() / (z * m).mean()))
        expected.append(torch.cat(parts, dim=1))
    assert torch.allclose(out["prompt_embeds"], torch.cat(expected, dim=-1), atol=1e-5)
    first = prompt_chunks(sdxl.tokenizer_2, prompt)[0]
    with torch.no_grad():
        pooled = sdxl.text_encoder_2(torch.tensor([first.tokens])).text_embeds
    assert torch.allclose(out["pooled_prompt_embeds"], pooled, atol=1e-6)  # batch of 2 vs 1
