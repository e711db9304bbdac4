"""Library writes of the images app: image metadata and deletion, tags, projects, styles,
prompt helpers (versions, rollback, embeddings) and themes (favorites, remix).

Every function takes keyword arguments, checks ownership (others' private objects are 404,
shared objects others may read but only staff change: 404 for reads that are not allowed,
403 ``forbidden`` for writes to a visible object they do not own) and raises
``ApplicationError`` for rule violations.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.text import slugify

from core.exceptions import ApplicationError

from ..embeddings import get_embedder
from ..models import (
    Image,
    Project,
    PromptHelper,
    PromptHelperVersion,
    Style,
    Tag,
    ThemeFavorite,
    ThemeHelper,
)

TAG_MAX_LENGTH = 100


def _forbidden(what: str) -> ApplicationError:
    return ApplicationError("forbidden", f"You cannot change this {what}.", status=403)


def _not_found(what: str) -> ApplicationError:
    return ApplicationError("not_found", f"No such {what}.", status=404)


# ------------------------------------------------------------------ tags

def tag_normalize(name: str) -> str:
    """Lower case, single spaces, no surrounding punctuation, at most 100 characters."""
    name = " ".join(str(name).replace("_", " ").split()).strip(" ,.;:()[]{}").lower()
    return name[:TAG_MAX_LENGTH]


def tag_get_or_create(*, name: str) -> Tag | None:
    """The tag named ``name`` (normalized), created when missing; None for an empty name."""
    name = tag_normalize(name)
    slug = slugify(name, allow_unicode=True)[:120]
    if not name or not slug:
        return None
    tag = Tag.objects.filter(Q(name=name) | Q(slug=slug)).first()
    if tag is not None:
        return tag
    try:
        with transaction.atomic():
            return Tag.objects.create(name=name, slug=slug)
    except IntegrityError:  # a concurrent writer created it
        return Tag.objects.filter(Q(name=name) | Q(slug=slug)).first()


def image_tags_add(*, image: Image, names) -> list[Tag]:
    """Add tags ``names`` (strings) to ``image``; returns the tags added or already there."""
    tags = [t for t in (tag_get_or_create(name=n) for n in names) if t is not None]
    if tags:
        image.tags.add(*tags)
    return tags


# ------------------------------------------------------------------ images

IMAGE_EDITABLE = ("title", "caption", "alt_text", "is_public", "is_favorite", "nsfw_level")


def _check_owner(obj_owner_id, user, what: str) -> None:
    if obj_owner_id != getattr(user, "pk", None):
        raise _forbidden(what)


def image_update(*, image: Image, user, data: dict) -> Image:
    """Change ``image``'s metadata. ``data`` may hold ``title``, ``caption``, ``alt_text``,
    ``is_public``, ``is_favorite``, ``nsfw_level`` (0..3), ``tags`` (list of names; replaces
    the set) and ``project`` (a Project of ``user`` or None).

    Raises:
        ApplicationError: 403 ``forbidden`` (not the owner), 400 ``invalid`` (foreign project).
    """
    _check_owner(image.user_id, user, "image")
    fields = [f for f in IMAGE_EDITABLE if f in data]
    for field in fields:
        setattr(image, field, data[field])
    with transaction.atomic():
        if "project" in data:
            project = data["project"]
            if project is not None and project.owner_id != user.pk:
                raise ApplicationError("invalid", "project: not one of your projects.",
                                       fields={"project": ["Not one of your projects."]})
            image.project = project
            fields.append("project")
        if fields:
            image.save(update_fields=fields)
        if "tags" in data:
            tags = [t for t in (tag_get_or_create(name=n) for n in data["tags"]) if t]
            image.tags.set(tags)
    return image


def image_delete(*, image: Image, user) -> None:
    """Delete ``image`` and its files (PNG, thumbnail, narration audio) after the row is gone.

    Raises:
        ApplicationError: 403 ``forbidden`` when ``user`` does not own it.
    """
    _check_owner(image.user_id, user, "image")
    files = [f for f in (image.file, image.thumbnail, image.audio) if f]
    storages_names = [(f.storage, f.name) for f in files]
    with transaction.atomic():
        image.delete()

        def remove():
            for storage, name in storages_names:
                storage.delete(name)
        transaction.on_commit(remove)


# ------------------------------------------------------------------ projects

def project_create(*, user, data: dict) -> Project:
    """A new project of ``user``: ``name`` (required), ``description``, ``is_public``,
    ``cover`` (one of the user's images or None)."""
    project = Project(owner=user)
    return _project_apply(project=project, user=user, data=data)


def _project_apply(*, project: Project, user, data: dict) -> Project:
    for field in ("name", "description", "is_public"):
        if field in data:
            setattr(project, field, data[field])
    if "cover" in data:
        cover = data["cover"]
        if cover is not None and cover.user_id != user.pk:
            raise ApplicationError("invalid", "cover: not one of your images.",
                                   fields={"cover": ["Not one of your images."]})
        project.cover = cover
    project.save()
    return project


def project_update(*, project: Project, user, data: dict) -> Project:
    """Change ``project`` (fields as in :func:`project_create`). 403 when not the owner."""
    _check_owner(project.owner_id, user, "project")
    return _project_apply(project=project, user=user, data=data)


def project_delete(*, project: Project, user) -> None:
    """Delete ``project``; its images stay, without a project."""
    _check_owner(project.owner_id, user, "project")
    project.delete()


# ------------------------------------------------------------------ styles

def _check_shared_writer(*, obj, user, what: str) -> None:
    """Own objects are editable by their owner; shared (owner None) ones by staff only."""
    if obj.owner_id is None or obj.is_shared:
        if not (user.is_staff or obj.owner_id == user.pk):
            raise _forbidden(what)
    elif obj.owner_id != user.pk:
        raise _forbidden(what)


def _style_apply_data(*, style: Style, user, data: dict) -> Style:
    for field in ("name", "prompt_template", "negative_prompt", "default_parameters"):
        if field in data:
            setattr(style, field, data[field])
    if "is_shared" in data:
        if data["is_shared"] and not user.is_staff:
            raise ApplicationError("forbidden", "Only staff can share styles.", status=403)
        style.is_shared = bool(data["is_shared"])
    if "{prompt}" not in style.prompt_template:
        raise ApplicationError("invalid", "prompt_template: must contain {prompt}.",
                               fields={"prompt_template": ["Must contain {prompt}."]})
    style.save()
    return style


def style_create(*, user, data: dict) -> Style:
    """A new style of ``user``; staff may create shared ones (``is_shared``: owner None).

    Raises:
        ApplicationError: 400 ``invalid`` (template without ``{prompt}``), 403 ``forbidden``.
    """
    style = Style(owner=user)
    style = _style_apply_data(style=style, user=user, data=data)
    if style.is_shared:
        style.owner = None
        style.save(update_fields=["owner"])
    return style


def style_update(*, style: Style, user, data: dict) -> Style:
    _check_shared_writer(obj=style, user=user, what="style")
    return _style_apply_data(style=style, user=user, data=data)


def style_delete(*, style: Style, user) -> None:
    _check_shared_writer(obj=style, user=user, what="style")
    style.delete()


def style_resolve(*, user, ref) -> Style:
    """A style visible to ``user`` (own or shared) by id or exact name (own first).

    Raises:
        ApplicationError: 400 ``unknown_style``.
    """
    visible = Style.objects.filter(Q(owner_id=getattr(user, "pk", None)) | Q(is_shared=True))
    ref = str(ref).strip()
    style = None
    if ref.isdigit():
        style = visible.filter(pk=int(ref)).first()
    if style is None:
        style = (visible.filter(name=ref, owner_id=getattr(user, "pk", None)).first()
                 or visible.filter(name=ref).first())
    if style is None:
        raise ApplicationError("unknown_style", f"No style {ref!r}.",
                               fields={"style": [f"Unknown style {ref!r}."]})
    return style


STYLE_PARAMETERS = ("width", "height", "steps", "guidance_scale", "model")


def style_apply_params(*, user, params: dict) -> dict:
    """Generate ``params`` with ``params["style"]`` (id or name) applied: the prompt goes
    through the template, the style's negative prompt is used when none was given, and its
    ``default_parameters`` fill omitted width/height/steps/guidance_scale/model. The Style is
    returned under ``"style_obj"``. Without a style, ``params`` comes back unchanged.

    Raises:
        ApplicationError: 400 ``unknown_style``.
    """
    ref = params.get("style")
    if ref in (None, ""):
        return params
    style = style_resolve(user=user, ref=ref)
    out = dict(params)
    out["prompt"] = style.apply(params["prompt"])
    if params.get("negative_prompt") is None and style.negative_prompt:
        out["negative_prompt"] = style.negative_prompt
    defaults = style.default_parameters or {}
    for key in STYLE_PARAMETERS:
        if out.get(key) in (None, "") and defaults.get(key) not in (None, ""):
            out[key] = defaults[key]
    out["style_obj"] = style
    return out


# ------------------------------------------------------------------ prompt helpers

def _embed(helper: PromptHelper) -> None:
    embedder = get_embedder()
    helper.embedding = embedder.embed([helper.prompt])[0]
    helper.embedder = embedder.name


def prompt_helper_create(*, user, data: dict) -> PromptHelper:
    """A saved prompt (``name``, ``prompt``, ``negative_prompt``) with version 1 and its
    embedding computed now."""
    with transaction.atomic():
        helper = PromptHelper(owner=user, name=data["name"], prompt=data["prompt"],
                              negative_prompt=data.get("negative_prompt", ""),
                              current_version=1)
        _embed(helper)
        helper.save()
        PromptHelperVersion.objects.create(helper=helper, version=1, prompt=helper.prompt,
                                           negative_prompt=helper.negative_prompt)
    return helper


def _new_version(*, helper: PromptHelper, prompt: str, negative_prompt: str) -> PromptHelper:
    last = helper.versions.order_by("-version").values_list("version", flat=True).first() or 0
    helper.prompt, helper.negative_prompt = prompt, negative_prompt
    helper.current_version = last + 1
    _embed(helper)
    helper.save()
    PromptHelperVersion.objects.create(helper=helper, version=helper.current_version,
                                       prompt=prompt, negative_prompt=negative_prompt)
    return helper


def prompt_helper_update(*, helper: PromptHelper, user, data: dict) -> PromptHelper:
    """Rename and/or change the prompt; a changed prompt or negative prompt is a new version
    (and a new embedding)."""
    _check_owner(helper.owner_id, user, "prompt helper")
    with transaction.atomic():
        if "name" in data:
            helper.name = data["name"]
            helper.save(update_fields=["name", "updated_at"])
        prompt = data.get("prompt", helper.prompt)
        negative = data.get("negative_prompt", helper.negative_prompt)
        if (prompt, negative) != (helper.prompt, helper.negative_prompt):
            _new_version(helper=helper, prompt=prompt, negative_prompt=negative)
    return helper


def prompt_helper_rollback(*, helper: PromptHelper, user, version: int) -> PromptHelper:
    """Make version ``version``'s content current again, as a new version (history is kept).

    Raises:
        ApplicationError: 400 ``unknown_version``.
    """
    _check_owner(helper.owner_id, user, "prompt helper")
    old = helper.versions.filter(version=version).first()
    if old is None:
        raise ApplicationError("unknown_version", f"No version {version}.",
                               fields={"version": [f"No version {version}."]})
    with transaction.atomic():
        return _new_version(helper=helper, prompt=old.prompt, negative_prompt=old.negative_prompt)


def prompt_helper_delete(*, helper: PromptHelper, user) -> None:
    _check_owner(helper.owner_id, user, "prompt helper")
    helper.delete()


# ------------------------------------------------------------------ themes

def _theme_apply(*, theme: ThemeHelper, user, data: dict) -> ThemeHelper:
    for field in ("name", "description", "terms"):
        if field in data:
            setattr(theme, field, data[field])
    if "is_shared" in data:
        if data["is_shared"] and not user.is_staff:
            raise ApplicationError("forbidden", "Only staff can share themes.", status=403)
        theme.is_shared = bool(data["is_shared"])
    theme.save()
    return theme


def theme_create(*, user, data: dict) -> ThemeHelper:
    """A new theme of ``user`` (staff: shared with everyone when ``is_shared``)."""
    theme = _theme_apply(theme=ThemeHelper(owner=user), user=user, data=data)
    if theme.is_shared:
        theme.owner = None
        theme.save(update_fields=["owner"])
    return theme


def theme_update(*, theme: ThemeHelper, user, data: dict) -> ThemeHelper:
    _check_shared_writer(obj=theme, user=user, what="theme")
    return _theme_apply(theme=theme, user=user, data=data)


def theme_delete(*, theme: ThemeHelper, user) -> None:
    _check_shared_writer(obj=theme, user=user, what="theme")
    theme.delete()


def theme_remix(*, theme: ThemeHelper, user, data: dict) -> ThemeHelper:
    """A new theme of ``user`` derived from ``theme`` (``parent``): ``name`` (default
    "<name> (remix)"), ``description``, ``terms`` (replace) and ``add_terms`` (appended, no
    duplicates)."""
    terms = list(data.get("terms") or theme.terms)
    for term in data.get("add_terms") or []:
        if term not in terms:
            terms.append(term)
    return ThemeHelper.objects.create(
        owner=user, name=data.get("name") or f"{theme.name} (remix)"[:200],
        description=data.get("description", theme.description), terms=terms, parent=theme)


def theme_favorite_add(*, user, theme: ThemeHelper) -> tuple[ThemeFavorite, bool]:
    """Favorite ``theme`` (visible to ``user``); returns ``(favorite, created)``."""
    return ThemeFavorite.objects.get_or_create(user=user, theme=theme)


def theme_favorite_remove(*, favorite: ThemeFavorite, user) -> None:
    if favorite.user_id != user.pk:
        raise _not_found("favorite")
    favorite.delete()
