"""Replicate predictions as a provider.

Protocol (docs/protocols.md#replicate, from Replicate's OpenAPI spec and replicate-python):

- create: ``POST /v1/models/{owner}/{name}/predictions`` with ``{"input": {...}}`` for official
  models, or ``POST /v1/predictions`` with ``{"version": "owner/name:<hex>"|<hex>, "input"}``;
  header ``Prefer: wait=N`` (1..60 s) holds the answer until done or N seconds pass;
- then poll ``urls.get`` until ``status`` is terminal (``succeeded``, ``failed``, ``canceled``,
  ``aborted``); cancel with ``POST urls.cancel``;
- ``output`` is model-specific: usually a list of HTTPS URLs (or one URL) that need the
  ``Authorization`` header; ``error`` is a string when it failed;
- errors are RFC 7807 JSON (``detail``); a 429 says ``"resets in ~30s"``.

Inputs follow the common SD/Flux names (``prompt``, ``negative_prompt``, ``width``, ``height``,
``num_outputs``, ``num_inference_steps``, ``guidance_scale``, ``seed``; ``image``, ``mask``,
``prompt_strength`` for edits) and a profile's ``options["input"]`` overrides them; inputs are
passed as data URLs.
"""

from __future__ import annotations

import time
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
from .http import looks_like_policy
from .remote import RemoteProvider, decode_image, image_to_data_uri

TERMINAL = {"succeeded", "failed", "canceled", "aborted"}


class ReplicateProvider(RemoteProvider):
    """Options: ``api_key`` (REPLICATE_API_TOKEN), ``base_url``, ``output_hosts`` (hosts the
    output files come from), ``wait_seconds`` (``Prefer: wait=N``), ``poll_interval``
    (seconds), ``models`` (listed by :meth:`models`), ``upscale_model``."""

    required = {"api_key": "REPLICATE_API_TOKEN"}

    name = "replicate"
    pipeline_types = ("replicate", "flux", "sdxl", "sd")
    capabilities = Capabilities(img2img=True, inpaint=True, upscale=True, loras=False,
                                max_width=1440, max_height=1440, max_batch=4)
    extra_options = {"output_hosts": ["replicate.delivery"], "wait_seconds": 60,
                     "poll_interval": 1.0, "models": [],
                     "upscale_model": "nightmareai/real-esrgan"}
    health_call = ("GET", "/predictions")

    def client_kwargs(self) -> dict[str, Any]:
        return {"extra_hosts": list(self.options["output_hosts"])}

    # -- requests ------------------------------------------------------------------------
    @staticmethod
    def _input(spec: GenerationSpec) -> dict[str, Any]:
        data: dict[str, Any] = {
            "prompt": spec.prompt, "width": spec.width, "height": spec.height,
            "num_outputs": spec.n, "num_inference_steps": spec.steps,
            "guidance_scale": spec.guidance_scale, "seed": spec.seed,
        }
        if spec.negative_prompt:
            data["negative_prompt"] = spec.negative_prompt
        data.update((spec.model.options or {}).get("input", {}))
        return data

    def generate(self, spec: GenerationSpec, sink: ProgressSink) -> list[GeneratedImage]:
        """Create a prediction for ``spec.model.model`` and return its output images.

        Raises:
            ProviderError: ``content_policy`` / ``provider_failed`` when the prediction fails,
                HTTP failures (see ``providers.http``).
            GenerationCancelled: after ``urls.cancel`` when the sink asked to stop.
        """
        return self._images(self._predict(spec.model.model, self._input(spec), sink), spec)

    def edit(self, spec: EditSpec, sink: ProgressSink) -> list[GeneratedImage]:
        """img2img/inpaint: ``image`` and ``mask`` as data URLs, ``prompt_strength`` = the
        denoising strength (the SD/SDXL models' names; Flux fill models may need
        ``options["input"]``)."""
        data = self._input(spec)
        data.update({"image": image_to_data_uri(spec.init_image),
                     "prompt_strength": spec.strength})
        if spec.mask is not None:
            data["mask"] = image_to_data_uri(spec.mask.convert("L"))
        return self._images(self._predict(spec.model.model, data, sink), spec)

    def upscale(self, spec: UpscaleSpec, sink: ProgressSink) -> GeneratedImage:
        """Run an upscale model with ``{"image", "scale": factor}``: ``spec.upscaler`` when it
        names a Replicate model (``owner/name[:version]``), else the ``upscale_model`` option
        (default ``nightmareai/real-esrgan``). ``spec.model`` (the txt2img profile) is not
        used: a generation model is no upscaler."""
        model = spec.upscaler if "/" in (spec.upscaler or "") else self.options["upscale_model"]
        prediction = self._predict(model, {"image": image_to_data_uri(spec.image),
                                           "scale": spec.factor}, sink)
        urls = _output_urls(prediction.get("output"))
        if not urls:
            raise ProviderError("provider_bad_response", "Replicate returned no upscaled image.")
        return GeneratedImage(image=self._fetch(urls[0]), seed=0, info={
            "provider": self.name, "model": model, "factor": spec.factor,
            "prediction_id": prediction.get("id")})

    def _predict(self, model: str, data: dict[str, Any], sink: ProgressSink) -> dict[str, Any]:
        if sink.should_cancel():
            raise GenerationCancelled()
        if not model:
            raise ProviderError("model_not_found", "The profile names no Replicate model.")
        wait = max(1, min(60, int(self.options["wait_seconds"])))
        headers = {"Prefer": f"wait={wait}"}
        if ":" in model or "/" not in model:
            path, body = "/predictions", {"version": model, "input": data}
        else:
            path, body = f"/models/{model}/predictions", {"input": data}
        prediction = self.client.json("POST", path, json=body, headers=headers, sink=sink,
                                      timeout=max(self.timeout, wait + 10))
        sink.step(0, 1, prediction.get("status", ""))
        while prediction.get("status") not in TERMINAL:
            if sink.should_cancel():
                cancel = (prediction.get("urls") or {}).get("cancel")
                if cancel:
                    self.client.request("POST", cancel, retries=1)
                raise GenerationCancelled()
            time.sleep(float(self.options["poll_interval"]))
            url = (prediction.get("urls") or {}).get("get") or f"/predictions/{prediction['id']}"
            prediction = self.client.json("GET", url, sink=sink)
        if prediction["status"] != "succeeded":
            error = str(prediction.get("error") or prediction["status"])
            code = "content_policy" if looks_like_policy(error) else (
                "canceled" if prediction["status"] == "canceled" else "provider_failed")
            raise ProviderError(code, f"replicate: prediction {prediction.get('id')} "
                                      f"{prediction['status']}: {error}")
        sink.step(1, 1, "succeeded")
        return prediction

    def _fetch(self, url: str) -> Any:
        response = self.client.request("GET", url)
        return decode_image(response.content, provider=self.name)

    def _images(self, prediction: dict[str, Any], spec: GenerationSpec) -> list[GeneratedImage]:
        urls = _output_urls(prediction.get("output"))
        if not urls:
            raise ProviderError("provider_bad_response",
                                f"Replicate prediction {prediction.get('id')} has no output"
                                f"{' (data removed)' if prediction.get('data_removed') else ''}.")
        return [GeneratedImage(image=self._fetch(url), seed=spec.seed + i, info={
            "provider": self.name, "model": prediction.get("model") or spec.model.model,
            "version": prediction.get("version"), "prediction_id": prediction.get("id"),
            "predict_time": (prediction.get("metrics") or {}).get("predict_time")})
            for i, url in enumerate(urls[:spec.n])]

    def models(self) -> list[dict[str, Any]]:
        """The configured ``models`` (Replicate has no cheap catalogue of image models)."""
        return [{"id": m, "name": m, "pipeline_type": "replicate"} for m in self.options["models"]]


def _output_urls(output: Any) -> list[str]:
    if isinstance(output, str):
        return [output]
    if isinstance(output, list):
        return [str(x) for x in output if isinstance(x, str)]
    return []
