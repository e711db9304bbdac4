"""SD.Next / AUTOMATIC1111 web UI API (``--api``) as a provider.

Protocol (docs/protocols.md#a1111-and-sdnext, from AUTOMATIC1111 ``modules/api/api.py`` and
vladmandic/sdnext):

- ``POST /sdapi/v1/txt2img`` and ``/img2img`` block until done; the answer is
  ``{"images": [b64 PNG, no data: prefix], "parameters": {...}, "info": "<JSON string>"}``;
  with several images a grid may come first (``info.index_of_first_image``).
- progress: ``GET /sdapi/v1/progress`` from another connection while the POST runs
  (``state.sampling_step`` / ``state.sampling_steps``); cancel: ``POST /sdapi/v1/interrupt``.
- LoRAs go into the prompt as ``<lora:NAME:WEIGHT>``, NAME as listed by ``GET /sdapi/v1/loras``
  (``name``/``alias``; SD.Next may report a hash in ``metadata``).
- checkpoints from ``GET /sdapi/v1/sd-models``; a profile's model goes in
  ``override_settings.sd_model_checkpoint``.
- upscale: ``POST /sdapi/v1/extra-single-image`` → ``{"image": b64, "html_info"}``.
- auth: none, or HTTP Basic (``--auth``); no rate limits; errors
  ``{"error","detail","body","errors"}``.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .base import (
    Capabilities,
    EditSpec,
    GeneratedImage,
    GenerationCancelled,
    GenerationSpec,
    ProgressSink,
    ProviderError,
    UpscaleSpec,
)
from .remote import RemoteProvider, decode_image, image_to_b64

DEFAULT_UPSCALER = "R-ESRGAN 4x+"


class SdnextProvider(RemoteProvider):
    """Options: ``base_url`` (e.g. ``http://127.0.0.1:7860``), ``username``/``password`` for
    HTTP Basic, ``poll_interval`` (seconds between progress polls), and the common remote
    options (see :class:`~providers.remote.RemoteProvider`)."""

    name = "sdnext"
    pipeline_types = ("sd", "sdxl", "flux", "sdnext")
    capabilities = Capabilities(img2img=True, inpaint=True, upscale=True, loras=True,
                                max_width=2048, max_height=2048, max_batch=8)
    required = {"base_url": "SDNEXT_BASE_URL"}
    extra_options = {"username": "", "password": "", "poll_interval": 0.5}
    health_call = ("GET", "/sdapi/v1/progress")

    def client_kwargs(self) -> dict[str, Any]:
        if self.options["username"]:
            return {"auth": (self.options["username"], self.options["password"])}
        return {}

    # -- LoRAs ---------------------------------------------------------------------------
    def _remote_loras(self) -> list[dict[str, Any]]:
        loras = self.client.json("GET", "/sdapi/v1/loras")
        return loras if isinstance(loras, list) else []

    def lora_names(self, spec: GenerationSpec) -> list[str]:
        """The remote name of each LoRA of ``spec``: matched by name/alias (file stem), else
        by a hash the remote reports (``metadata.sshs_model_hash`` or a ``hash``/``sha256``
        field, compared as a prefix of our sha256 or AutoV3).

        Raises:
            ProviderError: ``lora_not_on_server`` naming the first LoRA the server lacks.
        """
        if not spec.loras:
            return []
        remote = self._remote_loras()
        by_name: dict[str, str] = {}
        by_hash: dict[str, str] = {}
        for item in remote:
            name = str(item.get("name") or "")
            if not name:
                continue
            for key in (name, item.get("alias"), _stem(item.get("path"))):
                if key:
                    by_name.setdefault(str(key).lower(), name)
            metadata = item.get("metadata") or {}
            for value in (item.get("hash"), item.get("sha256"),
                          isinstance(metadata, dict) and metadata.get("sshs_model_hash")):
                if value:
                    by_hash[str(value).lower()] = name
        names = []
        for lora in spec.loras:
            found = by_name.get(lora.name.lower()) or by_name.get(_stem(lora.path).lower())
            if not found:
                found = next((n for h, n in by_hash.items()
                              if len(h) >= 10 and lora.sha256.lower().startswith(h)), None)
            if not found:
                raise ProviderError("lora_not_on_server",
                                    f"LoRA {lora.name!r} is not on the SD.Next server "
                                    f"({self.base_url}); copy it there and refresh its LoRAs.")
            names.append(found)
        return names

    # -- payloads ------------------------------------------------------------------------
    def _payload(self, spec: GenerationSpec) -> dict[str, Any]:
        names = self.lora_names(spec)
        tags = "".join(f" <lora:{n}:{lora.weight:g}>"
                       for n, lora in zip(names, spec.loras, strict=True))
        payload: dict[str, Any] = {
            "prompt": spec.prompt + tags, "negative_prompt": spec.negative_prompt,
            "width": spec.width, "height": spec.height, "steps": spec.steps,
            "cfg_scale": spec.guidance_scale, "seed": spec.seed, "batch_size": spec.n,
            "n_iter": 1, "send_images": True, "save_images": False,
        }
        options = dict(spec.model.options or {})
        if spec.model.model:
            payload["override_settings"] = {"sd_model_checkpoint": spec.model.model}
        payload.update({k: v for k, v in options.items() if k in (
            "sampler_name", "scheduler", "clip_skip", "override_settings", "restore_faces")})
        return payload

    def generate(self, spec: GenerationSpec, sink: ProgressSink) -> list[GeneratedImage]:
        """txt2img through ``/sdapi/v1/txt2img`` (see the module docstring).

        Raises:
            ProviderError: ``lora_not_on_server``, HTTP failures (see ``providers.http``).
            GenerationCancelled: after ``/sdapi/v1/interrupt`` when the sink asked to stop.
        """
        return self._run("/sdapi/v1/txt2img", self._payload(spec), spec, sink)

    def edit(self, spec: EditSpec, sink: ProgressSink) -> list[GeneratedImage]:
        """img2img (``init_images``, ``denoising_strength``) or inpaint (``mask``, white is
        repainted, as in A1111) through ``/sdapi/v1/img2img``."""
        payload = self._payload(spec)
        payload.update({"init_images": [image_to_b64(spec.init_image)],
                        "denoising_strength": spec.strength, "include_init_images": False})
        if spec.mask is not None:
            payload.update({"mask": image_to_b64(spec.mask.convert("L")), "inpainting_fill": 1,
                            "inpaint_full_res": False, "mask_blur": 4})
        return self._run("/sdapi/v1/img2img", payload, spec, sink)

    def upscale(self, spec: UpscaleSpec, sink: ProgressSink) -> GeneratedImage:
        """``/sdapi/v1/extra-single-image`` with ``upscaling_resize = factor`` and the named
        upscaler (default ``R-ESRGAN 4x+``)."""
        if sink.should_cancel():
            raise GenerationCancelled()
        upscaler = spec.upscaler or DEFAULT_UPSCALER
        body = self.client.json("POST", "/sdapi/v1/extra-single-image", sink=sink, json={
            "image": image_to_b64(spec.image), "resize_mode": 0,
            "upscaling_resize": spec.factor, "upscaler_1": upscaler, "upscaler_2": "None",
            "extras_upscaler_2_visibility": 0, "gfpgan_visibility": 0,
            "codeformer_visibility": 0, "codeformer_weight": 0, "upscale_first": False})
        if not isinstance(body, dict) or not body.get("image"):
            raise ProviderError("provider_bad_response", "SD.Next returned no upscaled image.")
        sink.step(1, 1)
        return GeneratedImage(image=decode_image(body["image"], provider=self.name), seed=0,
                              info={"upscaler": upscaler, "factor": spec.factor,
                                    "provider": self.name})

    # -- the blocking call with progress and cancel --------------------------------------
    def _run(self, path: str, payload: dict[str, Any], spec: GenerationSpec,
             sink: ProgressSink) -> list[GeneratedImage]:
        if sink.should_cancel():
            raise GenerationCancelled()
        client = self.client
        cancelled = threading.Event()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sdnext") as pool:
            future = pool.submit(client.json, "POST", path, json=payload)
            last = 0
            while True:
                try:
                    body = future.result(timeout=float(self.options["poll_interval"]))
                    break
                except TimeoutError:
                    pass
                if not cancelled.is_set() and sink.should_cancel():
                    cancelled.set()
                    try:
                        client.request("POST", "/sdapi/v1/interrupt", retries=0, timeout=10)
                    except ProviderError:
                        pass
                    continue
                last = self._poll_progress(sink, last, spec.steps)
        if cancelled.is_set():
            raise GenerationCancelled()
        return self._images(body, spec)

    def _poll_progress(self, sink: ProgressSink, last: int, default_total: int) -> int:
        try:
            progress = self.client.json("GET", "/sdapi/v1/progress?skip_current_image=true",
                                        retries=0, timeout=10)
        except ProviderError:
            return last
        state = progress.get("state") or {} if isinstance(progress, dict) else {}
        step = int(state.get("sampling_step") or 0)
        total = int(state.get("sampling_steps") or default_total or 1)
        if step > last:
            sink.step(min(step, total), total, "SD.Next")
            return step
        return last

    def _images(self, body: Any, spec: GenerationSpec) -> list[GeneratedImage]:
        if not isinstance(body, dict) or not isinstance(body.get("images"), list):
            raise ProviderError("provider_bad_response", "SD.Next answered without images.")
        try:
            info = json.loads(body.get("info") or "{}")
        except (TypeError, ValueError):
            info = {}
        if not isinstance(info, dict):
            info = {}
        first = int(info.get("index_of_first_image") or 0)
        images = body["images"][first:first + spec.n]
        seeds = info.get("all_seeds") or [spec.seed + i for i in range(len(images))]
        out = []
        for i, data in enumerate(images):
            seed = int(seeds[i]) if i < len(seeds) else spec.seed + i
            out.append(GeneratedImage(
                image=decode_image(data, provider=self.name), seed=seed,
                info={"sampler": info.get("sampler_name", ""), "provider": self.name,
                      "model": info.get("sd_model_name", spec.model.model),
                      "model_hash": info.get("sd_model_hash", "")}))
        if not out:
            raise ProviderError("provider_bad_response", "SD.Next returned no images.")
        return out

    def models(self) -> list[dict[str, Any]]:
        """Checkpoints from ``GET /sdapi/v1/sd-models``: ``id`` is the ``title``."""
        items = self.client.json("GET", "/sdapi/v1/sd-models", retries=0)
        return [{"id": m.get("title") or m.get("model_name"), "name": m.get("model_name", ""),
                 "pipeline_type": "sdnext", "hash": m.get("hash")}
                for m in items if isinstance(m, dict)] if isinstance(items, list) else []


def _stem(path: Any) -> str:
    if not path:
        return ""
    name = str(path).replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name

