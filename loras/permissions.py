"""Who may change the shared library (docs/library.md#who-may-change-the-library).

The LoRA files, their sidecars and the library's shared fields (tags, notes, trigger words,
base model, previews...) belong to everyone who uses this install, so changing them needs staff
or the ``loras.manage_library`` permission (grantable per user or group in the admin):
renaming, moving, trashing, restoring, excluding, organizing, scanning, refreshing from
Civitai, update checks, downloads (models and example images), previews and example-image
changes. Every signed-in user reads the library and keeps their own favourites
(``loras.models.LoraFavorite``). Refusals are 403 ``{"code": "permission_denied", ...}``.
"""

from __future__ import annotations

from rest_framework import permissions

from core.exceptions import ApplicationError

PERMISSION = "loras.manage_library"
DENIED_MESSAGE = ("Changing the shared library needs staff or the 'manage library' permission "
                  "(ask an administrator).")


def can_manage_library(user) -> bool:
    """Whether ``user`` may change library files: active staff, or a user holding
    ``loras.manage_library`` (superusers hold every permission)."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    return bool(user.is_staff or user.has_perm(PERMISSION))


def library_manage_check(user) -> None:
    """Raises ApplicationError 403 ``permission_denied`` unless :func:`can_manage_library`."""
    if not can_manage_library(user):
        raise ApplicationError("permission_denied", DENIED_MESSAGE, status=403)


class ManagesLibrary(permissions.BasePermission):
    """Signed in, and for unsafe methods (POST, PUT, PATCH, DELETE) a library manager."""

    message = DENIED_MESSAGE
    refuses_signed_in_reads = False  # core.schema: reads are every signed-in user's

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        return request.method in permissions.SAFE_METHODS or can_manage_library(request.user)


class ManagesLibraryAlways(ManagesLibrary):
    """A library manager for every method (a read that starts work, e.g. an update check)."""

    refuses_signed_in_reads = True

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated
                    and can_manage_library(request.user))
