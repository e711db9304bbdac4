"""The client address of a request, honouring ``X-Forwarded-For`` only behind trusted proxies.

``TRUSTED_PROXIES`` (settings; addresses or networks, e.g. ``["127.0.0.1", "10.0.0.0/8"]``)
names the reverse proxies in front of the server. When the direct peer (``REMOTE_ADDR``) is one
of them, ``X-Forwarded-For`` is read from the right (the hop the nearest proxy added) and the
first address that is not a trusted proxy is the client. Otherwise the header is ignored: a
client choosing its own ``X-Forwarded-For`` cannot pick the address that rate limits and login
lockouts count against (MDN, "X-Forwarded-For: Security and privacy concerns").
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries if e.strip())


def _parse(text: str):
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(address, networks) -> bool:
    return address is not None and any(address in net for net in networks)


def client_ip(request) -> str:
    """The address ``request`` comes from (``REMOTE_ADDR``, or the client a trusted proxy
    reports in ``X-Forwarded-For``); an empty string when unknown.

    Args:
        request: a Django ``HttpRequest`` or a DRF ``Request`` (anything with ``META``).
    """
    remote = request.META.get("REMOTE_ADDR", "") or ""
    networks = _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))
    if not networks or not _trusted(_parse(remote), networks):
        return remote
    nearest = remote
    hops = [h for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            return nearest  # a malformed hop: trust nothing further left of it
        if not _trusted(address, networks):
            return str(address)
        nearest = str(address)
    return nearest
