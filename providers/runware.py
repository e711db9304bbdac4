"""Runware REST API as a provider.

Protocol (docs/protocols.md#runware, from Runware/sdk-python and runware.ai/docs):

- ``POST {base}`` (``https://api.runware.ai/v1``) with a JSON **array of tasks** and
  ``Authorization: Bearer <key>``;
- ``imageInference``: ``taskUUID`` (UUIDv4, ours), ``positivePrompt``, ``negativePrompt``,
  ``model`` (AIR id, e.g. ``runware:100@1``), ``width``/``height``, ``steps``, ``CFGScale``,
  ``numberResults``, ``seed``, ``outputType`` (we ask ``base64Data``), ``outputFormat``,
  ``lora: [{"model": "civitai:<modelId>@<versionId>", "weight"}]``; edits add ``seedImage``,
  ``maskImage`` (data URIs) and ``strength``;
- the answer is ``{"data": [one item per image, same taskUUID, with imageBase64Data and seed],
  "errors": [{"code","message","parameter","taskType","taskUUID"}]}``; both may be present;
- 400/401/402/403 are permanent; "no hard rate limits" (429/5xx are retried anyway).
"""

from __future__ import annotations

import uuid
from typing import Any

from .base import (
    Capabilities,
    EditSpec,
    GeneratedImage,
    GenerationCancelled,
    GenerationSpec,
    ProgressSink,
    ProviderError,
)
from .http import looks_like_policy
from .remote import RemoteProvider, decode_image, image_to_data_uri


class RunwareProvider(RemoteProvider):
    """Options: ``api_key`` (RUNWARE_API_KEY), ``base_url``, ``models`` (AIR ids listed by
    :meth:`models`), and the common remote options."""

    required = {"api_key": "RUNWARE_API_KEY"}

    name = "runware"
    pipeline_types = ("runware", "sd", "sdxl", "flux")
    capabilities = Capabilities(img2img=True, inpaint=True, loras=True,
                                max_width=2048, max_height=2048, max_batch=4)
    extra_options = {"models": []}
    health_call = ("POST", "")

    def health(self) -> dict[str, Any]:
        """A ``ping`` task (``[{"taskType":"ping","ping":true}]``) answers ``pong``."""
        if not self.is_configured():
            return super().health()
        return {"configured": True, **self.client.ping(
            "POST", "", json=[{"taskType": "ping", "ping": True}])}

    @staticmethod
    def lora_airs(spec: GenerationSpec) -> list[dict[str, Any]]:
        """``[{"model": "civitai:<m>@<v>", "weight"}]`` for ``spec.loras``.

        Raises:
            ProviderError: ``lora_not_on_civitai`` naming the first LoRA without Civitai ids.
        """
        out = []
        for lora in spec.loras:
            if not lora.air:
                raise ProviderError("lora_not_on_civitai",
                                    f"LoRA {lora.name!r} has no Civitai model/version ids, so "
                                    "Runware cannot load it; link it to Civitai first.")
            out.append({"model": lora.air, "weight": lora.weight})
        return out

    def _task(self, spec: GenerationSpec) -> dict[str, Any]:
        if not spec.model.model:
            raise ProviderError("model_not_found", "The profile names no Runware model (AIR).")
        task: dict[str, Any] = {
            "taskType": "imageInference", "taskUUID": str(uuid.uuid4()),
            "positivePrompt": spec.prompt, "model": spec.model.model,
            "width": spec.width, "height": spec.height, "steps": spec.steps,
            "CFGScale": spec.guidance_scale, "numberResults": spec.n, "seed": spec.seed,
            "outputType": "base64Data", "outputFormat": "PNG", "deliveryMethod": "sync",
        }
        if spec.negative_prompt:
            task["negativePrompt"] = spec.negative_prompt
        loras = self.lora_airs(spec)
        if loras:
            task["lora"] = loras
        task.update((spec.model.options or {}).get("task", {}))
        return task

    def generate(self, spec: GenerationSpec, sink: ProgressSink) -> list[GeneratedImage]:
        """One ``imageInference`` task for ``spec.n`` images.

        Raises:
            ProviderError: ``lora_not_on_civitai``, ``content_policy``, ``provider_failed``
                (the task's ``errors[]`` message), HTTP failures (see ``providers.http``).
        """
        return self._run(self._task(spec), spec, sink)

    def edit(self, spec: EditSpec, sink: ProgressSink) -> list[GeneratedImage]:
        """img2img (``seedImage`` + ``strength``) or inpaint (+ ``maskImage``, white is
        repainted)."""
        task = self._task(spec)
        task.update({"seedImage": image_to_data_uri(spec.init_image), "strength": spec.strength})
        if spec.mask is not None:
            task["maskImage"] = image_to_data_uri(spec.mask.convert("L"))
        return self._run(task, spec, sink)

    def _run(self, task: dict[str, Any], spec: GenerationSpec,
             sink: ProgressSink) -> list[GeneratedImage]:
        if sink.should_cancel():
            raise GenerationCancelled()
        body = self.client.json("POST", "", json=[task], sink=sink)
        if not isinstance(body, dict):
            raise ProviderError("provider_bad_response", "Runware answered without an object.")
        mine = [item for item in body.get("data") or []
                if isinstance(item, dict) and item.get("taskUUID") == task["taskUUID"]]
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        if errors and not mine:
            first = errors[0]
            text = f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")
            code = "content_policy" if looks_like_policy(text) else "provider_failed"
            raise ProviderError(code, f"runware: {text}")
        if not mine:
            raise ProviderError("provider_bad_response", "Runware returned no images.")
        sink.step(1, 1)
        out = []
        for i, item in enumerate(mine[:spec.n]):
            data = item.get("imageBase64Data") or item.get("imageDataURI")
            if not data:
                raise ProviderError("provider_bad_response", "Runware returned no image data.")
            out.append(GeneratedImage(
                image=decode_image(data, provider=self.name),
                seed=int(item.get("seed", spec.seed + i)),
                info={"provider": self.name, "model": task["model"],
                      "image_uuid": item.get("imageUUID"), "task_uuid": task["taskUUID"],
                      "cost": item.get("cost"), "nsfw": item.get("NSFWContent")}))
        return out

    def models(self) -> list[dict[str, Any]]:
        """The configured ``models`` (AIR ids)."""
        return [{"id": m, "name": m, "pipeline_type": "runware"} for m in self.options["models"]]
