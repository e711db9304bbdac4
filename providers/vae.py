"""VAE overrides: which VAEs there are, and loading one offline (docs/samplers.md#vae).

A VAE is a ``.safetensors`` file in the original (CompVis/LDM, A1111 ``models/VAE``) layout, or
a diffusers ``AutoencoderKL`` folder (``config.json`` + weights). Files live under
``settings.VAE_DIR`` (default ``MODELS_DIR/VAE``); a request names one by file name or stem, as
A1111's ``sd_vae`` setting does; ``"Automatic"``/``"None"``/``""`` keep the model's own VAE.
A single file loads with ``AutoencoderKL.from_single_file(file, config=<the model's folder>,
subfolder="vae", local_files_only=True)``: the architecture (and ``scaling_factor``) come from
the model's own VAE config, the weights from the file; nothing is fetched from a hub
(docs/offline-models.md#single-file-checkpoints).

torch/diffusers are imported inside :func:`load_vae` only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: A1111 values that mean "the model's own VAE".
MODEL_VAE = ("", "automatic", "none")


def vae_dir() -> Path:
    """``settings.VAE_DIR`` or ``MODELS_DIR/VAE``."""
    from django.conf import settings

    configured = getattr(settings, "VAE_DIR", None)
    if configured:
        return Path(configured)
    return Path(getattr(settings, "MODELS_DIR", "") or ".") / "VAE"


def is_vae_path(path: Path) -> bool:
    """A ``.safetensors`` file, or a folder holding ``config.json``."""
    return (path.is_file() and path.suffix.lower() == ".safetensors") or (
        path.is_dir() and (path / "config.json").is_file())


def vae_choices() -> list[str]:
    """File/folder names of the VAEs under :func:`vae_dir`, sorted."""
    root = vae_dir()
    if not root.is_dir():
        return []
    return sorted(child.name for child in root.iterdir() if is_vae_path(child))


def vae_resolve(name: str) -> str:
    """The absolute path of the VAE a request names, ``""`` for the model's own.

    Args:
        name: a file or folder name under :func:`vae_dir` (with or without ``.safetensors``),
            or ``"Automatic"``/``"None"``/``""``. Paths are not accepted from requests: a
            name with a separator or ``..`` is refused.

    Raises:
        ValueError: unknown name; the message lists the VAEs there are.
    """
    name = str(name or "").strip()
    if name.lower() in MODEL_VAE:
        return ""
    choices = vae_choices()
    if "/" not in name and "\\" not in name and name not in (".", ".."):
        root = vae_dir()
        for candidate in (name, f"{name}.safetensors"):
            if candidate in choices:
                return os.path.realpath(root / candidate)
    listed = ", ".join(choices) if choices else f"none in {vae_dir()}"
    raise ValueError(f"Unknown VAE {name!r}; use Automatic or one of: {listed}.")


def load_vae(path: str, *, model_config: str, device: str, dtype: Any):
    """Load the ``AutoencoderKL`` at ``path`` offline and move it to ``device``/``dtype``.

    Args:
        path: a ``.safetensors`` file (original layout) or a diffusers VAE folder.
        model_config: a diffusers folder of the model (its ``vae/config.json`` describes the
            architecture a single file is loaded into).

    Raises:
        Exception: whatever diffusers raises (the caller maps it to ``ProviderError``).
    """
    from . import diffusers_pipelines as dp

    cls = dp.diffusers_class("AutoencoderKL")
    if os.path.isdir(path):
        vae = cls.from_pretrained(path, local_files_only=True)
    else:
        vae = cls.from_single_file(path, config=model_config, subfolder="vae",
                                   local_files_only=True)
    return vae.to(device, dtype)


def apply_vae(entry: Any, spec: Any, *, max_loaded: int = 2) -> None:
    """Put the VAE ``spec`` asks for on a cached pipeline and its ``from_pipe`` variants.

    The VAE is ``spec.vae`` (a path the service resolved), else the profile option
    ``spec.model.options["vae"]``, else the model's own (``entry.base_vae``). Loaded overrides
    are kept in ``entry.vaes`` (path -> module, the last ``max_loaded``); ``entry.vae_path``
    records the one in use. The caller holds the entry's lock.

    Args:
        entry: ``providers.diffusers_local._Entry`` (``pipe``, ``variants``, ``source``,
            ``device``, ``base_vae``, ``vaes``, ``vae_path``).

    Raises:
        ProviderError: ``vae_not_found`` (no such path), ``vae_load_failed``.
    """
    from .base import ProviderError
    from .diffusers_util import _short_reason

    wanted = spec.vae or str((spec.model.options or {}).get("vae") or "")
    wanted = os.path.realpath(os.path.expanduser(wanted)) if wanted else ""
    if wanted == entry.vae_path:
        return
    if not wanted:
        vae = entry.base_vae
    elif wanted in entry.vaes:
        vae = entry.vaes[wanted]
        entry.vaes.move_to_end(wanted)
    else:
        if not os.path.exists(wanted):
            raise ProviderError("vae_not_found", f"No VAE file or folder at {wanted}.")
        config = entry.source.config if entry.source.single_file else entry.source.path
        try:
            vae = load_vae(wanted, model_config=config, device=entry.device,
                           dtype=entry.base_vae.dtype)
        except Exception as exc:  # noqa: BLE001 - diffusers/safetensors errors, reported
            raise ProviderError("vae_load_failed",
                                f"Cannot load the VAE {wanted}: {_short_reason(exc)}") from exc
        entry.vaes[wanted] = vae
        while len(entry.vaes) > max_loaded:
            entry.vaes.popitem(last=False)
    for pipe in (entry.pipe, *entry.variants.values()):
        pipe.vae = vae
    entry.vae_path = wanted
