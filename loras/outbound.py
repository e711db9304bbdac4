"""The allow-list for outbound HTTP fetches (Civitai API, downloads, previews from a URL).

Rules (ARCHITECTURE.md "Outbound fetches go only to configured hosts"):

- the scheme is ``http`` or ``https``;
- the host is in ``settings.OUTBOUND_ALLOWED_HOSTS`` or is the host of ``CIVITAI_BASE_URL``
  (redirect hops of an allowed URL skip this rule: Civitai redirects downloads to presigned
  storage hosts that no one can list in advance);
- every address the host resolves to is public: private, loopback, link-local, reserved,
  multicast and unspecified addresses are refused unless ``settings.OUTBOUND_ALLOW_PRIVATE``
  (tests reach fake servers on loopback). This rule applies to every hop.

Known limit: the check resolves the name, then ``requests`` resolves it again (a DNS rebinding
window of one lookup).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings

from core.exceptions import ApplicationError

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


def outbound_check(url: str, *, check_host: bool = True) -> None:
    """Refuse ``url`` unless an outbound request to it is allowed (rules in the module doc).

    Args:
        url: absolute ``http(s)://`` URL.
        check_host: apply the host allow-list (False for redirect hops of an allowed URL; the
            address rule always applies).

    Raises:
        ApplicationError: 400 ``url_not_allowed`` (bad scheme, host not allowed, name that
            does not resolve, or a private address while ``OUTBOUND_ALLOW_PRIVATE`` is off).
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
    if check_host and host not in _allowed_hosts():
        raise _refused(url, f"host {host!r} is not in OUTBOUND_ALLOWED_HOSTS")
    if settings.OUTBOUND_ALLOW_PRIVATE:
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
                 timeout: float, stream: bool = True) -> requests.Response:
    """GET ``url`` following redirects by hand, checking every hop with :func:`outbound_check`.

    The first URL must pass the host allow-list; later hops only the address rule. The
    ``Authorization`` header is dropped when a hop changes host (as ``requests`` does).

    Args:
        session: the session to use (its headers apply to every hop).
        headers: extra request headers.
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
        response = session.get(url, headers=headers, timeout=timeout, stream=stream,
                               allow_redirects=False)
        if not response.is_redirect:
            return response
        location = urljoin(url, response.headers["Location"])
        response.close()
        if urlsplit(location).hostname != first_host:
            headers["Authorization"] = None  # None removes a session header too
        outbound_check(location, check_host=False)
        url = location
    raise ApplicationError("too_many_redirects", f"More than {MAX_REDIRECTS} redirects.")
