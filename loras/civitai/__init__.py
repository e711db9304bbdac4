"""Civitai: the HTTP client (``client``) and the process-wide rate limiter (``ratelimit``)."""

from .client import (
    CivitaiClient,
    CivitaiError,
    CivitaiLoginRequired,
    CivitaiNotFound,
    CivitaiRateLimited,
    CivitaiUnavailable,
    sync_client,
)
from .ratelimit import limiter, parse_retry_after

__all__ = ["CivitaiClient", "CivitaiError", "CivitaiLoginRequired", "CivitaiNotFound",
           "CivitaiRateLimited", "CivitaiUnavailable", "limiter", "parse_retry_after",
           "sync_client"]
