"""The one HTTP helper of remote providers: timeouts, retries with backoff, error mapping.

Rules (issue #5, docs/protocols.md#common-rules-for-remote-providers):

- every call has a timeout (seconds; ``(connect, read)`` both set to ``timeout``);
- 408, 429, 5xx, connection errors and timeouts are retried ``max_retries`` times under the
  one retry policy of the HTTP clients (``loras.outbound.retry_policy``, on tenacity), waiting
  the provider's hint when it gives one (``Retry-After`` as seconds or an HTTP date, OpenAI's
  ``retry-after-ms``, Gemini's ``google.rpc.RetryInfo.retryDelay`` such as ``"3s"``, Replicate's
  ``"resets in ~30s"``), else ``backoff * 2**attempt`` seconds; a hint longer than
  ``max_retry_wait`` fails at once as retryable;
- other 4xx are permanent: 401/403 → ``provider_auth``, 402 or an ``insufficient_quota`` 429 →
  ``provider_quota``, a content-policy refusal → ``content_policy``, the rest →
  ``provider_bad_request``; the message is the provider's own *structured* error message
  (a JSON ``error.message``, ``detail``...), never a raw body;
- requests go only to the configured base URL's origin (plus the listed ``extra_hosts``, e.g.
  Replicate's ``replicate.delivery`` output host), the host a staff member configured (it may
  be on loopback, like a local SD.Next); anything else is ``url_not_allowed``. Redirects of a
  GET are followed by hand, each hop checked by the same rule before it is requested (at most
  ``MAX_REDIRECTS``); other methods never follow one.

The last failure of each provider is kept in the Django cache for ``/api/providers/health/``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from loras.outbound import MAX_REDIRECTS, RetryLater, retry_policy

from .base import GenerationCancelled, ProgressSink, ProviderError

log = logging.getLogger(__name__)

RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
LAST_ERROR_KEY = "providers:last-error:{}"
_POLICY_WORDS = re.compile(
    r"content[_ ]?polic|safety|nsfw|moderation|blocked|prohibited|content_filter", re.I)


def parse_retry_hint(response: requests.Response) -> float | None:
    """Seconds the provider asks us to wait, or None.

    Looks at ``retry-after-ms`` (OpenAI SDK), ``Retry-After`` (seconds or HTTP date, RFC 9110),
    Gemini's ``error.details[].retryDelay`` (``"12s"``) and a ``detail`` text with
    ``"resets in ~Ns"`` (Replicate's 429 body).
    """
    from loras.civitai.ratelimit import parse_retry_after

    ms = response.headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    seconds = parse_retry_after(response.headers.get("Retry-After"))
    if seconds is not None:
        return seconds
    body = _json_or_none(response)
    if isinstance(body, dict):
        error = body.get("error")
        for detail in (error.get("details") or []) if isinstance(error, dict) else []:
            delay = isinstance(detail, dict) and detail.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return max(0.0, float(delay[:-1]))
                except ValueError:
                    pass
        match = re.search(r"resets in ~?(\d+(?:\.\d+)?)\s*s", str(body.get("detail") or ""))
        if match:
            return float(match.group(1))
    return None


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def error_text(response: requests.Response) -> str:
    """The provider's own error message from the usual JSON body shapes
    (``{"error":{"message"}}``, ``{"errors":[{"message"}]}``, RFC 7807 ``detail``, A1111
    ``{"detail"}``), else the HTTP reason phrase: a body that is not such JSON (an HTML page,
    a proxy's answer) is never echoed."""
    body = _json_or_none(response)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message") or errors[0])[:500]
        for key in ("detail", "message", "error", "title"):
            if body.get(key):
                return str(body[key])[:500]
    return (response.reason or f"HTTP {response.status_code}")[:500]


def error_code_of(response: requests.Response) -> str:
    """The provider's machine code (``error.code``/``error.status``/``errors[0].code``), or ""."""
    body = _json_or_none(response)
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("code") or "") + " " + str(error.get("type") or error.get("status")
                                                         or "")
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("code") or "")
    return ""


def looks_like_policy(*texts: str) -> bool:
    """True when a provider message or code names a safety/content-policy refusal."""
    return any(t and _POLICY_WORDS.search(t) for t in texts)


class RemoteClient:
    """Calls one remote provider. Thread-safe (one ``requests.Session`` per thread).

    Args:
        provider: provider name (in messages and the last-error cache key).
        base_url: the configured API root, e.g. ``https://api.openai.com/v1``.
        headers: sent with every call (auth).
        timeout: seconds for connect and for read, per attempt.
        max_retries: retries after the first attempt for transient failures.
        backoff: first backoff in seconds (doubles per retry) when no hint is given.
        max_retry_wait: the longest wait honoured (seconds).
        extra_hosts: more hosts (``host`` or ``host:port``) absolute URLs may reach.
        auth: a ``requests`` auth object (HTTP Basic for SD.Next), or None.
    """

    def __init__(self, *, provider: str, base_url: str, headers: dict[str, str] | None = None,
                 timeout: float = 120.0, max_retries: int = 3, backoff: float = 1.0,
                 max_retry_wait: float = 60.0, extra_hosts: list[str] | tuple = (),
                 auth: Any = None):
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_retry_wait = float(max_retry_wait)
        self.auth = auth
        origin = urlsplit(self.base_url)
        self._allowed = {(origin.scheme, origin.netloc.lower())}
        self._extra_hosts = {h.lower() for h in extra_hosts}
        self._local = threading.local()

    # -- plumbing --------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["User-Agent"] = "Atelier/0.1"
        return session

    def url(self, path_or_url: str) -> str:
        """An absolute URL under the base URL, or ``path_or_url`` itself when it is absolute
        and allowed.

        Raises:
            ProviderError: ``url_not_allowed`` for any other origin.
        """
        if "://" not in path_or_url:
            path = path_or_url.lstrip("/")
            return f"{self.base_url}/{path}" if path else self.base_url
        parts = urlsplit(path_or_url)
        host = parts.netloc.lower()
        if (parts.scheme, host) in self._allowed or (
                parts.scheme in ("http", "https") and (
                    host in self._extra_hosts or (parts.hostname or "") in self._extra_hosts)):
            return path_or_url
        raise ProviderError("url_not_allowed",
                            f"{self.provider}: refusing to call {parts.scheme}://{host} "
                            f"(only {self.base_url} is configured).")

    def _remember(self, error: ProviderError) -> ProviderError:
        try:
            from django.core.cache import cache

            cache.set(LAST_ERROR_KEY.format(self.provider),
                      {"code": error.code, "message": error.message, "at": time.time()},
                      timeout=24 * 3600)
        except Exception:  # noqa: BLE001 - the cache is a nicety, never a failure
            log.debug("could not cache the last error of %s", self.provider, exc_info=True)
        return error

    def permanent_error(self, response: requests.Response) -> ProviderError:
        """Map a non-retryable HTTP failure to a :class:`ProviderError` with the provider's
        message (see the module docstring for the codes)."""
        message = error_text(response)
        code = error_code_of(response)
        status = response.status_code
        if looks_like_policy(message, code):
            kind = "content_policy"
        elif status in (401, 403):
            kind = "provider_auth"
        elif status == 402 or "insufficient_quota" in code:
            kind = "provider_quota"
        elif status == 400 and "API_KEY_INVALID" in (response.text or ""):
            kind = "provider_auth"  # Gemini: a bad key is a 400 (docs/protocols.md#gemini)
        else:
            kind = "provider_bad_request"
        return ProviderError(kind, f"{self.provider} ({status}): {message}")

    # -- requests ----------------------------------------------------------------------------
    def _send_once(self, method: str, url: str, *, timeout: float,
                   **kwargs: Any) -> requests.Response:
        """One request; a GET/HEAD follows redirects by hand, each ``Location`` passing
        :meth:`url` before it is requested (``Authorization`` dropped on a change of host).

        Raises:
            ProviderError: ``url_not_allowed`` for a hop elsewhere; ``provider_bad_response``
                after ``MAX_REDIRECTS`` hops. ``requests`` network errors.
        """
        headers = kwargs.pop("headers")
        first_host = urlsplit(url).netloc.lower()
        for _ in range(MAX_REDIRECTS + 1):
            response = self._session().request(method, url, headers=headers,
                                               timeout=(timeout, timeout), auth=self.auth,
                                               allow_redirects=False, **kwargs)
            if method.upper() not in ("GET", "HEAD") or not response.is_redirect:
                return response
            location = requests.compat.urljoin(response.url or url,
                                               response.headers["Location"])
            response.close()
            url = self.url(location)
            if urlsplit(url).netloc.lower() != first_host:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        raise ProviderError("provider_bad_response",
                            f"{self.provider}: more than {MAX_REDIRECTS} redirects.")

    def _attempt(self, method: str, url: str, *, attempt: int, timeout: float,
                 ok: Callable[[requests.Response], bool] | None,
                 **kwargs: Any) -> requests.Response:
        """One try: the response, a permanent :class:`ProviderError`, or :class:`RetryLater`
        with the provider's hint or the backoff as its delay."""
        hint = None
        try:
            response = self._send_once(method, url, timeout=timeout, **kwargs)
        except requests.Timeout:
            error = ProviderError("provider_timeout",
                                  f"{self.provider}: no answer within {timeout:g} s.",
                                  retryable=True)
        except requests.ConnectionError as exc:
            error = ProviderError("provider_unavailable",
                                  f"{self.provider} is unreachable at {self.base_url} "
                                  f"({type(exc).__name__}).", retryable=True)
        else:
            if ok is not None and ok(response):
                return response
            if response.status_code < 400:
                return response
            if response.status_code not in RETRY_STATUSES or (
                    "insufficient_quota" in error_code_of(response)):
                raise self._remember(self.permanent_error(response))
            hint = parse_retry_hint(response)
            message = error_text(response)
            if looks_like_policy(message, error_code_of(response)):
                raise self._remember(self.permanent_error(response))
            code = ("provider_rate_limited" if response.status_code == 429
                    else "provider_unavailable")
            error = ProviderError(code, f"{self.provider} ({response.status_code}): "
                                        f"{message}", retryable=True)
        raise RetryLater(error, hint if hint is not None else self.backoff * (2 ** attempt))

    def request(self, method: str, path_or_url: str, *, sink: ProgressSink | None = None,
                timeout: float | None = None, retries: int | None = None,
                ok: Callable[[requests.Response], bool] | None = None,
                **kwargs: Any) -> requests.Response:
        """Send one request with retries; returns the first 2xx/3xx response (or one ``ok``
        accepts).

        Args:
            sink: when given, ``sink.should_cancel()`` is checked while waiting to retry.
            timeout: seconds, default the client's.
            retries: default ``max_retries``; 0 for calls that must not repeat.
            kwargs: passed to ``requests`` (``json``, ``data``, ``files``, ``headers``...).

        Raises:
            ProviderError: permanent HTTP errors at once (see :meth:`permanent_error`);
                ``url_not_allowed`` for a URL or redirect hop off the configured hosts;
                ``provider_rate_limited`` / ``provider_unavailable`` / ``provider_timeout``
                (``retryable=True``) when retries are exhausted or a hint is too long.
            GenerationCancelled: the sink asked to cancel while waiting to retry.
        """
        url = self.url(path_or_url)
        headers = {**self.headers, **kwargs.pop("headers", {})}
        timeout = self.timeout if timeout is None else timeout

        def give_up(last: RetryLater) -> ProviderError:
            if last.delay > self.max_retry_wait:
                last.error.message += f" (asked to wait {last.delay:g} s)"
            return self._remember(last.error)

        policy = retry_policy(retries=self.max_retries if retries is None else retries,
                              max_wait=self.max_retry_wait, give_up=give_up,
                              sleep=lambda seconds: self._sleep(seconds, sink),
                              name=f"{self.provider} {method} {url}")
        for attempt in policy:
            with attempt:
                return self._attempt(method, url, attempt=attempt.retry_state.attempt_number - 1,
                                     timeout=timeout, ok=ok, headers=headers, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover - the policy raises

    @staticmethod
    def _sleep(seconds: float, sink: ProgressSink | None) -> None:
        end = time.monotonic() + seconds
        while True:
            if sink is not None and sink.should_cancel():
                raise GenerationCancelled()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.2))

    def json(self, method: str, path_or_url: str, **kwargs: Any) -> Any:
        """:meth:`request` and decode the JSON body.

        Raises:
            ProviderError: ``provider_bad_response`` when the body is not JSON.
        """
        response = self.request(method, path_or_url, **kwargs)
        try:
            return response.json()
        except ValueError:
            ctype = (response.headers.get("Content-Type") or "no content type")[:100]
            raise self._remember(ProviderError(
                "provider_bad_response",
                f"{self.provider} answered {response.status_code} without JSON ({ctype}).")) \
                from None

    def ping(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One call for health checks: ``{"reachable", "latency_ms", "detail"}``; never raises.

        Timeout ``PROVIDER_HEALTH_TIMEOUT`` seconds, no retries.
        """
        from django.conf import settings

        started = time.monotonic()
        try:
            self.request(method, path, retries=0,
                         timeout=float(getattr(settings, "PROVIDER_HEALTH_TIMEOUT", 5.0)),
                         **kwargs)
        except ProviderError as exc:
            return {"reachable": exc.code not in ("provider_unavailable", "provider_timeout"),
                    "ok": False, "latency_ms": round((time.monotonic() - started) * 1000, 1),
                    "detail": exc.message}
        return {"reachable": True, "ok": True,
                "latency_ms": round((time.monotonic() - started) * 1000, 1), "detail": ""}
