"""The Civitai client: one ``requests.Session``, every call paced by the process-wide limiter.

Facts (docs/protocols.md#civitai, from civitai/civitai-developer-docs and civitai/civitai sources):

- Metadata lives under ``{CIVITAI_BASE_URL}/api/v1``: ``GET /models/{id}``,
  ``GET /model-versions/{id}``, ``GET /model-versions/by-hash/{hash}`` (AutoV1/AutoV2/AutoV3/
  SHA256/BLAKE3/CRC32; the server upper-cases it; no match is a 404) and ``GET /images``
  (cursor pagination through ``metadata.nextCursor``).
- The bulk ``POST /model-versions/by-hash`` exists but its shape is UNVERIFIED, so
  :meth:`CivitaiClient.versions_by_hashes` loops over the single lookup (each paced).
- Auth: ``Authorization: Bearer <key>`` (preferred over ``?token=``).
- Downloads: ``GET /api/download/models/{versionId}`` answers a 307 to a presigned file URL.
  Without ``Content-Type: application/json`` an early-access or login-required file redirects
  to an HTML page (status 200); with it, ``401 {"error":"Unauthorized"}`` or
  ``403 {"error":"Early Access","deadline":…}``. A final ``text/html`` is an auth failure.
- 429 (with or without ``Retry-After``) and 5xx are retried with backoff (see ``ratelimit``)
  under the one retry policy of the HTTP clients (``loras.outbound.retry_policy``).

Every request, metadata included, goes through :func:`loras.outbound.outbound_get`, so every
redirect hop is checked before it is requested. Errors are
:class:`~core.exceptions.ApplicationError` subclasses, so the API maps them once: a rate limit
is never reported as "not found" (nor leads to a deletion). Their messages say the status and
the call, never the remote body (whatever answered may not be Civitai).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import requests
from django.conf import settings
from django.core.cache import cache

from core.exceptions import ApplicationError
from loras.outbound import RetryLater, outbound_get, retry_policy

from .ratelimit import limiter, parse_retry_after

NOT_FOUND_KEY = "civitai:not-found:{}"


class CivitaiError(ApplicationError):
    """A Civitai call failed (base class). ``retry_after``: seconds, or None."""

    retry_after: float | None = None


class CivitaiNotFound(CivitaiError):
    """404: no model, version or hash match (``cached`` when answered from the not-found cache)."""

    def __init__(self, message: str, *, cached: bool = False):
        super().__init__("civitai_not_found", message, status=404)
        self.cached = cached


class CivitaiRateLimited(CivitaiError):
    """Still 429 after ``CIVITAI_MAX_RETRIES`` retries (API answer: 429 with Retry-After)."""

    def __init__(self, message: str, *, retry_after: float | None):
        super().__init__("civitai_rate_limited", message, status=429)
        self.retry_after = retry_after


class CivitaiUnavailable(CivitaiError):
    """5xx, connection errors, timeouts or a non-JSON answer, after the retries (503)."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 code: str = "civitai_unavailable"):
        super().__init__(code, message, status=503)
        self.retry_after = retry_after


class CivitaiLoginRequired(CivitaiError):
    """401/403 or an HTML login/early-access page: the file needs an API key or purchase."""

    def __init__(self, message: str, *, status: int = 401):
        super().__init__("civitai_login_required", message, status=status)


def sync_client() -> CivitaiClient:
    """A client for HTTP request handlers: it never waits longer than
    ``CIVITAI_SYNC_MAX_WAIT`` seconds (default 10) for one rate-limit pause, answering 429 with
    ``Retry-After`` instead of holding the request."""
    return CivitaiClient(max_wait=float(getattr(settings, "CIVITAI_SYNC_MAX_WAIT", 10.0)))


class CivitaiClient:
    """Calls Civitai with base URL, key and timeout from settings.

    Args:
        base_url: default ``settings.CIVITAI_BASE_URL`` (``https://civitai.com``).
        api_key: default ``settings.CIVITAI_API_KEY`` (sent as ``Authorization: Bearer``).
        timeout: seconds per connect/read, default ``settings.CIVITAI_TIMEOUT``.
        max_wait: the longest single wait (seconds) for the limiter or a retry; a longer one
            raises at once with its ``retry_after``. None (jobs) waits as long as told; HTTP
            views pass ``CIVITAI_SYNC_MAX_WAIT`` (see :func:`sync_client`).
    """

    def __init__(self, *, base_url: str | None = None, api_key: str | None = None,
                 timeout: float | None = None, max_wait: float | None = None):
        self.base_url = (base_url or settings.CIVITAI_BASE_URL).rstrip("/")
        self.timeout = settings.CIVITAI_TIMEOUT if timeout is None else timeout
        self.max_wait = max_wait
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "Atelier/0.1 (+LoRA library)"
        key = settings.CIVITAI_API_KEY if api_key is None else api_key
        if key:
            self.session.headers["Authorization"] = f"Bearer {key}"

    def close(self) -> None:
        self.session.close()

    # -- retries ------------------------------------------------------------------------
    def _attempt(self, send: Callable[[], requests.Response], what: str,
                 attempt: int) -> requests.Response:
        """One paced call: the response unless it is a 429/5xx or a network error, which
        penalize the shared limiter and raise :class:`RetryLater`."""
        if limiter.acquire(max_wait=self.max_wait) is None:
            raise CivitaiRateLimited(f"Civitai calls are paused by a rate limit ({what}).",
                                     retry_after=limiter.pending())
        try:
            response = send()
        except (requests.ConnectionError, requests.Timeout) as exc:
            delay = limiter.backoff_delay(attempt)
            error: CivitaiError = CivitaiUnavailable(
                f"Civitai is unreachable ({what}): {type(exc).__name__}.", retry_after=delay)
        else:
            if response.status_code != 429 and response.status_code < 500:
                return response
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            delay = limiter.backoff_delay(attempt, retry_after)
            response.close()
            if response.status_code == 429:
                error = CivitaiRateLimited(f"Civitai rate limit ({what}).", retry_after=delay)
            else:
                error = CivitaiUnavailable(
                    f"Civitai answered {response.status_code} ({what}).", retry_after=delay)
        limiter.penalize(delay)  # every thread of this process waits, not only this call
        raise RetryLater(error, delay)

    def _send(self, send: Callable[[], requests.Response], what: str) -> requests.Response:
        """Run ``send`` under the limiter with the shared retry policy: 429, 5xx and network
        errors are retried up to ``CIVITAI_MAX_RETRIES`` times, each wait being the server's
        ``Retry-After`` (capped by ``CIVITAI_MAX_RETRY_AFTER``) or the backoff, spent in the
        limiter before the next call.

        Returns the first response that is neither 429 nor 5xx.

        Raises:
            CivitaiRateLimited, CivitaiUnavailable: after the retries, or at once when a wait
                would exceed ``max_wait`` (``retry_after`` says how long).
            ApplicationError: 400 ``url_not_allowed`` / ``too_many_redirects`` from a hop.
        """
        policy = retry_policy(retries=int(settings.CIVITAI_MAX_RETRIES), max_wait=self.max_wait,
                              sleep=lambda seconds: None, name=f"civitai {what}")
        for attempt in policy:
            with attempt:
                return self._attempt(send, what, attempt.retry_state.attempt_number - 1)
        raise AssertionError("unreachable")  # pragma: no cover - the policy raises

    def _get_json(self, path: str, *, params: dict | None = None) -> dict:
        url = f"{self.base_url}/api/v1{path}"
        response = self._send(lambda: outbound_get(self.session, url, params=params,
                                                   timeout=self.timeout, stream=False), path)
        status = response.status_code
        if status == 404:
            raise CivitaiNotFound(f"Civitai has no match for {path}.")
        if status in (401, 403):
            raise CivitaiLoginRequired(f"Civitai refused {path} ({status}); an API key with "
                                       "access may be needed.", status=status)
        if status >= 300:
            raise CivitaiError("civitai_error", f"Civitai answered {status} for {path}.")
        try:
            return response.json()
        except ValueError:
            raise CivitaiUnavailable(f"Civitai answered non-JSON for {path}.",
                                     code="civitai_bad_response") from None

    # -- metadata -----------------------------------------------------------------------
    def version_by_hash(self, hash_hex: str) -> dict:
        """The model version (docs/protocols.md#civitai-model-versions) of a file hash.

        ``hash_hex``: any hash kind Civitai accepts (SHA256, AutoV2, AutoV3...), any case. A
        404 is remembered for ``CIVITAI_NOT_FOUND_TTL`` seconds in the Django cache, so a
        repeated lookup does not call Civitai.

        Raises:
            CivitaiNotFound, CivitaiRateLimited, CivitaiUnavailable.
        """
        key = NOT_FOUND_KEY.format(hash_hex.upper())
        if cache.get(key):
            raise CivitaiNotFound(f"No Civitai model version has hash {hash_hex} (cached).",
                                  cached=True)
        try:
            return self._get_json(f"/model-versions/by-hash/{hash_hex.upper()}")
        except CivitaiNotFound:
            cache.set(key, True, timeout=settings.CIVITAI_NOT_FOUND_TTL)
            raise

    def versions_by_hashes(self, hashes: list[str]) -> dict[str, dict | None]:
        """``{hash: version or None}`` for several hashes (one paced lookup each, since the
        bulk endpoint's shape is UNVERIFIED).

        Raises:
            CivitaiRateLimited, CivitaiUnavailable: the first one that happens.
        """
        found: dict[str, dict | None] = {}
        for hash_hex in hashes:
            try:
                found[hash_hex] = self.version_by_hash(hash_hex)
            except CivitaiNotFound:
                found[hash_hex] = None
        return found

    def version_get(self, version_id: int) -> dict:
        """``GET /model-versions/{id}``. Raises CivitaiNotFound (unknown or no file) etc."""
        return self._get_json(f"/model-versions/{int(version_id)}")

    def model_get(self, model_id: int) -> dict:
        """``GET /models/{id}``: the model with ``tags``, ``creator``, ``allowCommercialUse``,
        ``modelVersions``... Raises CivitaiNotFound etc."""
        return self._get_json(f"/models/{int(model_id)}")

    def images_page(self, *, model_version_id: int | None = None, model_id: int | None = None,
                    limit: int = 100, cursor: str | None = None, **filters) -> dict:
        """One ``GET /images`` page: ``{"items": [...], "metadata": {"nextCursor"?: str}}``.

        ``limit`` 1–200; ``cursor`` from the previous page's ``metadata.nextCursor``.
        """
        params = {"limit": max(1, min(int(limit), 200)), **filters}
        if model_version_id is not None:
            params["modelVersionId"] = int(model_version_id)
        if model_id is not None:
            params["modelId"] = int(model_id)
        if cursor:
            params["cursor"] = cursor
        return self._get_json("/images", params=params)

    def images_iter(self, *, max_items: int | None = None, **query) -> Iterator[dict]:
        """Every image of :meth:`images_page` for ``query``, following ``nextCursor``."""
        cursor, count = None, 0
        while True:
            page = self.images_page(cursor=cursor, **query)
            for item in page.get("items") or []:
                yield item
                count += 1
                if max_items is not None and count >= max_items:
                    return
            cursor = (page.get("metadata") or {}).get("nextCursor")
            if not cursor:
                return

    # -- files --------------------------------------------------------------------------
    def download_url(self, version_id: int) -> str:
        return f"{self.base_url}/api/download/models/{int(version_id)}"

    def download_open(self, version_id: int, *, start: int = 0,
                      url: str | None = None) -> requests.Response:
        """Open the file of ``version_id`` for streaming, from byte ``start`` (``Range``).

        Sends ``Content-Type: application/json`` so Civitai answers 401/403 JSON instead of an
        HTML login page; every redirect hop passes :func:`loras.outbound.outbound_check`.
        Returns a 200 (whole file) or 206 (from ``start``) response; the caller closes it.

        Raises:
            CivitaiLoginRequired: 401, 403 or a ``text/html`` answer.
            CivitaiNotFound: 404/410. CivitaiRateLimited, CivitaiUnavailable.
            ApplicationError: 400 ``url_not_allowed``.
        """
        url = url or self.download_url(version_id)
        headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        if start:
            headers["Range"] = f"bytes={start}-"
        response = self._send(lambda: outbound_get(self.session, url, headers=headers,
                                                   timeout=self.timeout), "download")
        ctype = response.headers.get("Content-Type", "")
        status = response.status_code
        if status in (401, 403):
            response.close()
            raise CivitaiLoginRequired(
                f"Civitai refused the download ({status}); this file needs an API key with "
                "access (login required or early access).", status=status)
        if status in (404, 410):
            response.close()
            raise CivitaiNotFound(f"Civitai has no file for version {version_id} ({status}).")
        if status == 416 and start:
            return response  # the caller decides (the .part may already be complete)
        if status not in (200, 206):
            response.close()
            raise CivitaiError("civitai_error", f"Download answered {status}.")
        if "text/html" in ctype:
            response.close()
            raise CivitaiLoginRequired(
                "Civitai answered an HTML page instead of the file: the download needs login "
                "or early access (set CIVITAI_API_KEY).")
        return response
