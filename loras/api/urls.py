"""LoRA library API routes that are not part of the router (scan, Civitai, downloads).

The ``LoraViewSet`` and ``LibraryRootViewSet`` are registered in ``config/api_router.py``;
these explicit paths come first so ``/api/loras/scan/`` is not taken for a LoRA id.
"""

from .urls_civitai import urlpatterns as civitai_urls
from .urls_scan import urlpatterns as scan_urls
from .urls_updates import urlpatterns as update_urls

urlpatterns = [*scan_urls, *civitai_urls, *update_urls]
