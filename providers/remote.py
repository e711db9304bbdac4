"""Shared base of remote providers: options, configuration check, image encoding helpers."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from .base import ImageProvider, ProviderError, ProviderUnavailable
from .http import RemoteClient


def image_to_png_bytes(image: Any) -> bytes:
    """PNG bytes of a PIL image (RGBA and L are kept; other modes become RGB)."""
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def image_to_b64(image: Any) -> str:
    """Base64 PNG of a PIL image, without a ``data:`` prefix."""
    return base64.b64encode(image_to_png_bytes(image)).decode("ascii")


def image_to_data_uri(image: Any) -> str:
    """``data:image/png;base64,...`` of a PIL image."""
    return "data:image/png;base64," + image_to_b64(image)


def decode_image(data: bytes | str, *, provider: str) -> Any:
    """A loaded RGB PIL image from bytes, base64 or a ``data:`` URI.

    Raises:
        ProviderError: ``provider_bad_response`` when it is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        if isinstance(data, str):
            if data.startswith("data:"):
                data = data.split(",", 1)[1]
            data = base64.b64decode(data, validate=False)
        image = Image.open(io.BytesIO(data))
        image.load()
    except (binascii.Error, UnidentifiedImageError, OSError, ValueError) as exc:
        raise ProviderError("provider_bad_response",
                            f"{provider} returned an unreadable image ({exc}).") from None
    return image.convert("RGB")


class RemoteProvider(ImageProvider):
    """An engine reached over HTTP. Subclasses set ``required`` (option names that must be
    non-empty, with the environment variable that sets each) and use :attr:`client`.

    Options (from ``IMAGE_PROVIDERS[name]["OPTIONS"]``, see config/settings/base.py):
        base_url, api_key: where and how to call; timeout (seconds per attempt), max_retries,
        backoff (seconds, doubles per retry), max_retry_wait (seconds) for :class:`RemoteClient`;
        plus each subclass's own ``extra_options``.

    Raises:
        ImproperlyConfigured: for unknown options.
    """

    required: dict[str, str] = {"api_key": "API key"}
    extra_options: dict[str, Any] = {}

    def __init__(self, *, base_url: str = "", api_key: str = "", timeout: float = 120.0,
                 max_retries: int = 3, backoff: float = 1.0, max_retry_wait: float = 60.0,
                 **extra: Any):
        from django.core.exceptions import ImproperlyConfigured

        unknown = sorted(set(extra) - set(self.extra_options))
        if unknown:
            raise ImproperlyConfigured(f"{type(self).__name__} got unknown options {unknown}")
        self.options = {**self.extra_options, **extra}
        self.base_url = (base_url or "").rstrip("/")
        self.api_key = api_key or ""
        self.timeout, self.max_retries = float(timeout), int(max_retries)
        self.backoff, self.max_retry_wait = float(backoff), float(max_retry_wait)
        self._client: RemoteClient | None = None

    # -- configuration ---------------------------------------------------------------------
    def missing_settings(self) -> list[str]:
        """Descriptions of required options that are empty (e.g. ``["API key"]``)."""
        return [what for option, what in self.required.items() if not getattr(self, option, "")]

    def is_configured(self) -> bool:
        return not self.missing_settings()

    def require_configured(self) -> None:
        """Raises: ProviderUnavailable naming what to set."""
        missing = self.missing_settings()
        if missing:
            raise ProviderUnavailable(
                f"Provider {self.name!r} is not configured: set {', '.join(missing)} "
                "in the environment (see config/settings/base.py, 'remote providers').")

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate every call (default ``Authorization: Bearer <key>``)."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def client_kwargs(self) -> dict[str, Any]:
        """Extra :class:`RemoteClient` arguments (``extra_hosts``, ``auth``)."""
        return {}

    @property
    def client(self) -> RemoteClient:
        """The HTTP client (built on first use, after the configuration check)."""
        self.require_configured()
        if self._client is None:
            self._client = RemoteClient(
                provider=self.name, base_url=self.base_url, headers=self.auth_headers(),
                timeout=self.timeout, max_retries=self.max_retries, backoff=self.backoff,
                max_retry_wait=self.max_retry_wait, **self.client_kwargs())
        return self._client

    # -- health ----------------------------------------------------------------------------
    health_call: tuple[str, str] = ("GET", "/models")

    def health(self) -> dict[str, Any]:
        """``{"configured", "reachable", "ok", "latency_ms", "detail"}`` from one cheap call
        (``health_call``), no retries, ``PROVIDER_HEALTH_TIMEOUT`` seconds."""
        if not self.is_configured():
            return {"configured": False, "reachable": False, "ok": False, "latency_ms": None,
                    "detail": f"Set {', '.join(self.missing_settings())}."}
        method, path = self.health_call
        return {"configured": True, **self.client.ping(method, path)}
