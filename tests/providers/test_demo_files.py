"""The demo model written without torch (providers/demo.py, docs/first-run.md): the files match
what diffusers and transformers save for the same classes, load with nothing missing, and a
first run builds them without importing torch."""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from providers import demo

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:peft.tuners.tuners_utils")


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_recorded_layout_is_what_the_classes_save():
    recorded = demo.demo_layout()
    fresh = demo.record_demo_layout()
    for component in ("unet", "vae", "text_encoder"):
        assert fresh[component]["tensors"] == recorded[component]["tensors"], component
        for key in ("_class_name", "block_out_channels", "cross_attention_dim", "hidden_size",
                    "num_hidden_layers", "vocab_size", "latent_channels"):
            assert fresh[component]["config"].get(key) == recorded[component]["config"].get(key)
    assert fresh["scheduler"]["config"]["_class_name"] == "EulerDiscreteScheduler"
    for key in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert fresh["model_index"][key] == recorded["model_index"][key]
    assert fresh["tokenizer"] == recorded["tokenizer"]


def test_the_folder_loads_with_nothing_missing(tmp_path):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    folder = demo.build_demo_model(tmp_path / "demo-sd-tiny")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp siblings
    for cls, sub in ((UNet2DConditionModel, "unet"), (AutoencoderKL, "vae"),
                     (CLIPTextModel, "text_encoder")):
        _, info = cls.from_pretrained(str(folder / sub), output_loading_info=True,
                                      local_files_only=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], (sub, info)
    tokenizer = CLIPTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
    reference = demo.build_demo_tokenizer()
    for text in ("a red lighthouse", "héllo wörld 日本語", "x" * 200, ""):
        ours = tokenizer(text, padding="max_length", truncation=True, max_length=77).input_ids
        assert ours == reference(text, padding="max_length", truncation=True,
                                 max_length=77).input_ids

    # Deterministic: a second build is byte-identical.
    again = demo.build_demo_model(tmp_path / "again")
    assert _digest(folder) == _digest(again)


def test_fast_lora_has_the_peft_layout_and_changes_the_picture(tmp_path):
    import torch

    fast = demo.build_demo_lora(tmp_path / "fast.safetensors", seed=1)
    peft = demo._build_lora(tmp_path / "peft.safetensors", seed=1,
                            unet_config=demo.DEMO_UNET_CONFIG, base_model_tag="sd_v1")
    with safe_open(str(fast), "np") as a, safe_open(str(peft), "np") as b:
        assert sorted(a.keys()) == sorted(b.keys())
        assert a.metadata() | {"ss_output_name": "peft"} == b.metadata()
        for key in a.keys():
            x, y = a.get_tensor(key), b.get_tensor(key)
            assert (x.shape, x.dtype) == (y.shape, y.dtype), key
    assert demo.build_demo_lora(tmp_path / "cool.safetensors", seed=2).read_bytes() != \
        fast.read_bytes()

    pipe = demo.build_demo_pipeline()
    pipe.set_progress_bar_config(disable=True)

    def picture():
        return pipe("a red lighthouse", num_inference_steps=2, width=64, height=64,
                    generator=torch.Generator().manual_seed(3), output_type="np").images[0]

    base = picture()
    assert np.isfinite(base).all() and base.std() > 0.01  # noise, not a flat or broken image
    pipe.load_lora_weights(str(fast), adapter_name="fast")
    assert np.abs(picture() - base).mean() > 1e-3


def test_first_run_build_imports_no_torch(tmp_path):
    code = (
        "import sys, time; from pathlib import Path; t = time.perf_counter()\n"
        "from providers import demo\n"
        f"demo.build_demo_model(Path({str(tmp_path / 'm')!r}))\n"
        f"demo.build_demo_lora(Path({str(tmp_path / 'w.safetensors')!r}), seed=1)\n"
        "heavy = sorted(m for m in ('torch', 'diffusers', 'transformers', 'peft')"
        " if m in sys.modules)\n"
        "print(heavy, round(time.perf_counter() - t, 2))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    heavy, seconds = proc.stdout.rsplit("]", 1)
    assert heavy == "[", proc.stdout
    print(f"demo model + LoRA written in {float(seconds):.2f} s")
