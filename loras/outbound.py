"""Outbound HTTP: the allow-list every request and every redirect hop passes (Civitai API,
downloads, previews from a URL), and the one retry policy of the HTTP clients.

Rules of :func:`outbound_check` (docs/architecture.md#outbound-fetches), the same for the
first request and for every redirect hop:

- the scheme is ``http`` or ``https`` and the URL carries no credentials;
- the host is *configured* when it is in ``settings.OUTBOUND_ALLOWED_HOSTS`` or is the host of
  ``CIVITAI_BASE_URL``. A first request must go to a configured host. A redirect hop may go to
  another host (Civitai redirects downloads to presigned storage hosts that no one can list in
  advance), but then only to public addresses;
- every address the host resolves to is public: private, loopback, link-local, reserved,
  multicast and unspecified addresses are refused, except for a configured host while
  ``settings.OUTBOUND_ALLOW_PRIVATE`` is on (how tests reach their fake servers on loopback:
  they list ``127.0.0.1``/``localhost``). So with loopback allowed for a configured host, a
  redirect to an unconfigured name of a loopback service is still refused, before it is
  requested.

Errors name the URL and the rule, never a remote body (a refused hop is never requested).

Retries (:func:`retry_policy`, on ``tenacity``): an attempt that may be retried raises
:class:`RetryLater` with the error to report and the seconds to wait (the server's
``Retry-After`` or the client's backoff); the policy retries up to N times, never waits longer
than a cap, and raises the last error when it gives up. The Civitai client waits in its shared
rate limiter instead of sleeping here (``loras.civitai.ratelimit``); remote providers sleep
here, checking for cancel.

Known limit: the check resolves the name, then ``requests`` resolves it again (a DNS rebinding
window of one lookup).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

import requests
import tenacity
from django.conf import settings

from core.exceptions import ApplicationError

log = logging.getLogger(__name__)
MAX_REDIRECTS = 5


def _allowed_hosts() -> set[str]:
    hosts = {h.strip().lower().rstrip(".") for h in settings.OUTBOUND_ALLOWED_HOSTS if h.strip()}
    civitai_host = urlsplit(settings.CIVITAI_BASE_URL).hostname
    if civitai_host:
        hosts.add(civitai_host.lower())
    return hosts


def _refused(url: str, why: str) -> ApplicationError:
    return ApplicationError("url_not_allowed", f"Outbound URL refused ({why}): {url[:200]}",
                            fields={"url": [why]})


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix


def _address_is_public(address: str) -> bool:
    """Whether ``address`` is a globally routable unicast address. IPv6 forms that carry an
    IPv4 address (mapped ``::ffff:a.b.c.d``, 6to4 ``2002::/16``, Teredo, NAT64 ``64:ff9b::/96``)
    are judged by that IPv4 address; shared (100.64/10), private, loopback, link-local,
    reserved, multicast and unspecified addresses are not public (``ipaddress.is_global``,
    IANA special-purpose registries)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        ip = embedded or ip
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local
                                 or ip.is_reserved or ip.is_multicast or ip.is_unspecified)


def outbound_check(url: str, *, redirect_hop: bool = False) -> None:
    """Refuse ``url`` unless an outbound request to it is allowed (rules in the module doc).

    Args:
        url: absolute ``http(s)://`` URL.
        redirect_hop: ``url`` is a redirect's ``Location``: an unconfigured host is allowed,
            but only at public addresses.

    Raises:
        ApplicationError: 400 ``url_not_allowed`` (bad scheme, credentials, a first request
            to an unconfigured host, a name that does not resolve, or a non-public address of
            a host that is not configured or while ``OUTBOUND_ALLOW_PRIVATE`` is off).
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _refused(url, "not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise _refused(url, "only absolute http(s) URLs are allowed")
    if parts.username or parts.password:
        raise _refused(url, "credentials in URLs are not allowed")
    configured = host in _allowed_hosts()
    if not configured and not redirect_hop:
        raise _refused(url, f"host {host!r} is not in OUTBOUND_ALLOWED_HOSTS")
    if configured and settings.OUTBOUND_ALLOW_PRIVATE:
        return
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise _refused(url, f"host {host!r} does not resolve") from None
    for info in infos:
        address = info[4][0]
        if not _address_is_public(address):
            raise _refused(url, f"host {host!r} resolves to a non-public address {address}")


def outbound_get(session: requests.Session, url: str, *, headers: dict | None = None,
                 params: dict | None = None, timeout: float,
                 stream: bool = True) -> requests.Response:
    """GET ``url`` following redirects by hand, checking every hop with :func:`outbound_check`
    before it is requested.

    The ``Authorization`` header is dropped when a hop changes host (as ``requests`` does).

    Args:
        session: the session to use (its headers apply to every hop).
        headers: extra request headers.
        params: query parameters of the first request (a redirect's ``Location`` is taken as
            it is).
        timeout: seconds per connect/read.
        stream: leave the body unread (caller closes the response).

    Raises:
        ApplicationError: 400 ``url_not_allowed`` or ``too_many_redirects``.
        requests.RequestException: network errors.
    """
    headers = dict(headers or {})
    outbound_check(url)
    first_host = urlsplit(url).hostname
    for _ in range(MAX_REDIRECTS + 1):
        response = session.get(url, headers=headers, params=params, timeout=timeout,
                               stream=stream, allow_redirects=False)
        if not response.is_redirect:
            return response
        location = urljoin(response.url or url, response.headers["Location"])
        response.close()
        if urlsplit(location).hostname != first_host:
            headers["Authorization"] = None  # None removes a session header too
        outbound_check(location, redirect_hop=True)
        url, params = location, None
    raise ApplicationError("too_many_redirects", f"More than {MAX_REDIRECTS} redirects.")


# ----------------------------------------------------------------------------- retries
class RetryLater(Exception):
    """Raised by an attempt that may be tried again.

    Args:
        error: the exception to raise when no retry is left.
        delay: seconds to wait before the next attempt (a server's hint or a backoff).
    """

    def __init__(self, error: Exception, delay: float):
        super().__init__(str(error))
        self.error = error
        self.delay = max(0.0, float(delay))


def retry_policy(*, retries: int, max_wait: float | None,
                 sleep: Callable[[float], None] = time.sleep,
                 give_up: Callable[[RetryLater], Exception] | None = None,
                 name: str = "http") -> tenacity.Retrying:
    """The one retry policy of the HTTP clients: a ``tenacity.Retrying`` to iterate over
    (``for attempt in retry_policy(...): with attempt: ...``).

    An attempt raising :class:`RetryLater` is tried again after ``delay`` seconds, at most
    ``retries`` times; a delay over ``max_wait`` seconds (None: no cap) gives up at once. Any
    other exception propagates at once. On giving up, ``give_up(last)`` is raised (default:
    ``last.error``).

    Args:
        sleep: how to wait ``delay`` seconds: ``time.sleep``, a cancel-aware sleep, or a no-op
            when the caller's rate limiter does the waiting before the next attempt.
        name: the client, in the retry log line.
    """
    def stop(state: tenacity.RetryCallState) -> bool:
        delay = state.outcome.exception().delay
        return state.attempt_number > retries or (max_wait is not None and delay > max_wait)

    def wait(state: tenacity.RetryCallState) -> float:
        return state.outcome.exception().delay

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception()
        log.info("%s: %s; retry %d in %.2f s", name, getattr(exc.error, "code", exc.error),
                 state.attempt_number, exc.delay)

    def finish(state: tenacity.RetryCallState):
        last = state.outcome.exception()
        raise (give_up(last) if give_up else last.error) from None

    return tenacity.Retrying(retry=tenacity.retry_if_exception_type(RetryLater), stop=stop,
                             wait=wait, sleep=sleep, before_sleep=before_sleep,
                             retry_error_callback=finish)
