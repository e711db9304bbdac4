"""The library manager permission for tests (``loras.manage_library``, docs/library.md)."""

from __future__ import annotations


def grant_manage_library(user):
    """Give ``user`` the ``loras.manage_library`` permission (as the admin would) and return
    it fresh from the database (Django caches permissions on the instance)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(content_type__app_label="loras",
                                                     codename="manage_library"))
    return get_user_model().objects.get(pk=user.pk)
