import pytest


@pytest.fixture(scope="session")
def demo_assets(tmp_path_factory):
    """The tiny demo SD pipeline and two LoRAs, built once per session (random weights)."""
    from providers.demo import build_demo_lora, build_demo_model

    root = tmp_path_factory.mktemp("e2e-models")
    model = build_demo_model(root / "demo-sd-tiny")
    lora = build_demo_lora(root / "demo-warm.safetensors", seed=1)
    return {"model": model, "lora": lora}
