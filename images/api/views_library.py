"""The images library API (#6): own images, gallery, user images, projects, styles, tags,
prompt helpers (versions, rollback, similar), themes and favorites, usage.

Permissions: reading public images, the public gallery, public projects' galleries and tag
counts needs no login; everything else needs an authenticated user. Owners change their own
objects; staff change shared styles and themes. Others' private objects answer 404, visible
objects one may not change answer 403 ``forbidden``.
"""

from __future__ import annotations

import mimetypes

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.pagination import CappedCountPagination
from core.schema import api_errors
from jobs.api.serializers import JobAcceptedSerializer, accepted_response

from .. import selectors
from ..models import Image, Project, PromptHelper, Style, Tag, ThemeFavorite, ThemeHelper, UsageLog
from ..services.library import (
    image_delete,
    image_update,
    project_create,
    project_delete,
    project_update,
    prompt_helper_create,
    prompt_helper_delete,
    prompt_helper_rollback,
    prompt_helper_update,
    style_create,
    style_delete,
    style_update,
    theme_create,
    theme_delete,
    theme_favorite_add,
    theme_favorite_remove,
    theme_remix,
    theme_update,
)
from ..services.narration import image_narrate_start
from .filters import ImageFilter, UsageFilter
from .serializers_library import (
    ImagePatchSerializer,
    LibraryImageSerializer,
    ProjectSerializer,
    PromptHelperSerializer,
    PromptHelperVersionSerializer,
    RemixSerializer,
    RollbackSerializer,
    SimilarResponseSerializer,
    StyleSerializer,
    TagSerializer,
    ThemeFavoriteCreateSerializer,
    ThemeFavoriteSerializer,
    ThemeSerializer,
    UsageLogSerializer,
    UsageSummaryQuerySerializer,
)


class ImagePagination(CappedCountPagination):
    """50 per page by default, ``?page_size=`` up to 200; capped count (core/pagination.py)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def _valid(serializer_class, data, **kwargs):
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _truthy(value) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


# ------------------------------------------------------------------ images

class ImageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your images (list, filters in ``images.api.filters``); detail of your own or a public
    image; patch and delete your own; narrate; the protected file."""

    throttle_scope = None  # per action (core.throttling.CostRateThrottle)
    serializer_class = LibraryImageSerializer
    pagination_class = ImagePagination
    filterset_class = ImageFilter
    lookup_value_regex = r"\d+"
    queryset = Image.objects.none()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_permissions(self):
        if self.action in ("retrieve", "file"):
            return [permissions.AllowAny()]
        return [permissions.IsAuthenticated()]

    def get_queryset(self):
        return selectors.image_own_list(user=self.request.user)

    def get_object(self):
        return selectors.image_get_for_owner(user=self.request.user, pk=self.kwargs["pk"])

    @extend_schema(request=ImagePatchSerializer, responses=LibraryImageSerializer)
    def partial_update(self, request, pk=None):
        """Change title, caption, alt text, tags, project, public flag, favorite, NSFW level."""
        image = image_update(image=self.get_object(), user=request.user,
                             data=_valid(ImagePatchSerializer, request.data))
        image = selectors.image_get_for_owner(user=request.user, pk=image.pk)
        return Response(self.get_serializer(image).data)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request, pk=None):
        """Delete the image and its files (PNG, thumbnail, audio)."""
        image_delete(image=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={202: JobAcceptedSerializer})
    @action(detail=True, methods=["post"], throttle_scope="narrate")
    @api_errors(503)  # no text-to-speech engine, or the broker is down
    def narrate(self, request, pk=None):
        """Queue text-to-speech of the caption (else alt text, title, prompt); 503
        ``tts_unavailable`` when no engine is installed."""
        job = image_narrate_start(image=self.get_object(), user=request.user)
        return accepted_response(job)

    @extend_schema(parameters=[OpenApiParameter("variant", str,
                                                enum=["image", "thumbnail", "audio"])],
                   responses={(200, "image/*"): bytes, (200, "audio/*"): bytes})
    @action(detail=True, methods=["get"])
    def file(self, request, pk=None):
        """The image file (``variant=image``, default), its thumbnail or its narration, with
        the same visibility as the image (others' private images are 404)."""
        image = self.get_object()
        variant = request.query_params.get("variant", "image")
        field = {"image": image.file, "thumbnail": image.thumbnail,
                 "audio": image.audio}.get(variant)
        if not field:
            raise Http404("No such file.")
        try:
            handle = field.open("rb")
        except FileNotFoundError:
            raise Http404("The file is missing.") from None
        content_type = mimetypes.guess_type(field.name)[0] or "application/octet-stream"
        return FileResponse(handle, content_type=content_type)


class GalleryViewSet(viewsets.ReadOnlyModelViewSet):
    """Public images of everyone (no login needed); the image filters plus ``user``."""

    serializer_class = LibraryImageSerializer
    pagination_class = ImagePagination
    filterset_class = ImageFilter
    permission_classes = [permissions.AllowAny]
    lookup_value_regex = r"\d+"
    queryset = Image.objects.none()

    def get_queryset(self):
        return selectors.image_gallery_list()


class UserImagesViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """``?user=<username>``: that user's public images, or all of them for that user
    themselves; without ``user``: your own images."""

    serializer_class = LibraryImageSerializer
    pagination_class = ImagePagination
    filterset_class = ImageFilter
    permission_classes = [permissions.AllowAny]
    queryset = Image.objects.none()

    def get_queryset(self):
        username = self.request.query_params.get("user") or None
        return selectors.image_user_list(user=self.request.user, username=username)

    @extend_schema(parameters=[OpenApiParameter("user", str, description="Username")])
    def list(self, request, *args, **kwargs):
        if not request.query_params.get("user") and not request.user.is_authenticated:
            self.permission_denied(request)
        return super().list(request, *args, **kwargs)


# ------------------------------------------------------------------ projects

class ProjectViewSet(viewsets.ModelViewSet):
    """Your projects and public ones (read); create, change and delete your own."""

    serializer_class = ProjectSerializer
    lookup_value_regex = r"\d+"
    queryset = Project.objects.none()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.project_list(user=self.request.user)

    def get_object(self):
        return selectors.project_get(user=self.request.user, pk=self.kwargs["pk"])

    def _out(self, project):
        return self.get_serializer(selectors.project_get(user=self.request.user,
                                                         pk=project.pk)).data

    def create(self, request, *args, **kwargs):
        project = project_create(user=request.user, data=_valid(
            ProjectSerializer, request.data, context={"request": request}))
        return Response(self._out(project), status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        project = self.get_object()
        data = _valid(ProjectSerializer, request.data, partial=True,
                      context={"request": request})
        return Response(self._out(project_update(project=project, user=request.user,
                                                 data=data)))

    def destroy(self, request, *args, **kwargs):
        project_delete(project=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectGalleryView(generics.ListAPIView):
    """``/api/projects/<id>/gallery/``: the project's images (all for its owner, the public
    ones of a public project for others)."""

    serializer_class = LibraryImageSerializer
    pagination_class = ImagePagination
    filterset_class = ImageFilter
    permission_classes = [permissions.AllowAny]
    queryset = Image.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Image.objects.none()
        project = selectors.project_get(user=self.request.user, pk=self.kwargs["pk"])
        return selectors.project_gallery(user=self.request.user, project=project)


# ------------------------------------------------------------------ styles and tags

class StyleViewSet(viewsets.ModelViewSet):
    """Your styles and the shared ones; staff create and change shared styles."""

    serializer_class = StyleSerializer
    lookup_value_regex = r"\d+"
    queryset = Style.objects.none()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.style_list(user=self.request.user)

    def get_object(self):
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    def create(self, request, *args, **kwargs):
        style = style_create(user=request.user, data=_valid(StyleSerializer, request.data))
        return Response(self.get_serializer(style).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        style = self.get_object()
        data = _valid(StyleSerializer, request.data, partial=True)
        return Response(self.get_serializer(style_update(style=style, user=request.user,
                                                         data=data)).data)

    def destroy(self, request, *args, **kwargs):
        style_delete(style=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TagViewSet(viewsets.ReadOnlyModelViewSet):
    """Tags with ``count``: images visible to you carrying each (``?mine=true``: only yours)."""

    serializer_class = TagSerializer
    permission_classes = [permissions.AllowAny]
    lookup_value_regex = r"\d+"
    queryset = Tag.objects.none()

    def get_queryset(self):
        return selectors.tag_counts(user=self.request.user,
                                    mine=_truthy(self.request.query_params.get("mine")))

    @extend_schema(parameters=[OpenApiParameter("mine", bool)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


# ------------------------------------------------------------------ prompt helpers

class PromptHelperViewSet(viewsets.ModelViewSet):
    """Your saved prompts: a changed prompt is a new version; ``versions``, ``rollback`` and
    ``similar`` (cosine similarity over embeddings stored at save time)."""

    serializer_class = PromptHelperSerializer
    lookup_value_regex = r"\d+"
    queryset = PromptHelper.objects.none()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.prompt_helper_list(user=self.request.user)

    def get_object(self):
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    def create(self, request, *args, **kwargs):
        helper = prompt_helper_create(user=request.user,
                                      data=_valid(PromptHelperSerializer, request.data))
        return Response(self.get_serializer(helper).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        helper = self.get_object()
        data = _valid(PromptHelperSerializer, request.data, partial=True)
        return Response(self.get_serializer(prompt_helper_update(
            helper=helper, user=request.user, data=data)).data)

    def destroy(self, request, *args, **kwargs):
        prompt_helper_delete(helper=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=PromptHelperVersionSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def versions(self, request, pk=None):
        """Every version, newest first."""
        helper = self.get_object()
        return Response(PromptHelperVersionSerializer(helper.versions.all(), many=True).data)

    @extend_schema(request=RollbackSerializer, responses=PromptHelperSerializer)
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        """Make an old version current again (recorded as a new version)."""
        version = _valid(RollbackSerializer, request.data)["version"]
        helper = prompt_helper_rollback(helper=self.get_object(), user=request.user,
                                        version=version)
        return Response(self.get_serializer(helper).data)

    @extend_schema(parameters=[OpenApiParameter("q", str, required=True),
                               OpenApiParameter("k", int, description="1..50, default 5")],
                   responses=SimilarResponseSerializer)
    @action(detail=False, methods=["get"])
    def similar(self, request):
        """Your prompt helpers most similar to ``q``, best first, with cosine scores."""
        from core.exceptions import ApplicationError

        query = (request.query_params.get("q") or "").strip()
        if not query:
            raise ApplicationError("invalid", "q: required.", fields={"q": ["Required."]})
        try:
            k = max(1, min(50, int(request.query_params.get("k", 5))))
        except ValueError:
            raise ApplicationError("invalid", "k: must be a number.",
                                   fields={"k": ["Must be a number."]}) from None
        embedder, pairs = selectors.prompt_helper_similar(user=request.user, query=query, k=k)
        return Response({"query": query, "embedder": embedder, "results": [
            {"id": h.pk, "name": h.name, "prompt": h.prompt, "score": score}
            for h, score in pairs]})


# ------------------------------------------------------------------ themes

class ThemeViewSet(viewsets.ModelViewSet):
    """Your themes and the shared ones; ``remix`` copies one into a new theme of yours."""

    serializer_class = ThemeSerializer
    lookup_value_regex = r"\d+"
    queryset = ThemeHelper.objects.none()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.theme_list(user=self.request.user)

    def get_object(self):
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    def get_serializer_context(self):
        context = super().get_serializer_context()
        user = getattr(self.request, "user", None)
        if user is not None and user.is_authenticated:
            context["favorites"] = dict(ThemeFavorite.objects.filter(user=user)
                                        .values_list("theme_id", "pk"))
        return context

    def create(self, request, *args, **kwargs):
        theme = theme_create(user=request.user, data=_valid(ThemeSerializer, request.data))
        return Response(self.get_serializer(theme).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        theme = self.get_object()
        data = _valid(ThemeSerializer, request.data, partial=True)
        return Response(self.get_serializer(theme_update(theme=theme, user=request.user,
                                                         data=data)).data)

    def destroy(self, request, *args, **kwargs):
        theme_delete(theme=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=RemixSerializer, responses={201: ThemeSerializer})
    @action(detail=True, methods=["post"])
    def remix(self, request, pk=None):
        """A new theme of yours from this one (``parent``), with changes."""
        theme = theme_remix(theme=self.get_object(), user=request.user,
                            data=_valid(RemixSerializer, request.data))
        return Response(self.get_serializer(theme).data, status=status.HTTP_201_CREATED)


class ThemeFavoriteViewSet(mixins.ListModelMixin, mixins.CreateModelMixin,
                           mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Your favorite themes: POST ``{"theme": id}`` (201, or 200 when already), DELETE."""

    serializer_class = ThemeFavoriteSerializer
    lookup_value_regex = r"\d+"
    queryset = ThemeFavorite.objects.none()

    def get_queryset(self):
        return selectors.theme_favorite_list(user=self.request.user)

    @extend_schema(request=ThemeFavoriteCreateSerializer,
                   responses={201: ThemeFavoriteSerializer, 200: ThemeFavoriteSerializer})
    @api_errors(404)  # a theme you cannot see
    def create(self, request, *args, **kwargs):
        theme_id = _valid(ThemeFavoriteCreateSerializer, request.data)["theme"]
        theme = get_object_or_404(selectors.theme_list(user=request.user), pk=theme_id)
        favorite, created = theme_favorite_add(user=request.user, theme=theme)
        return Response(self.get_serializer(favorite).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def destroy(self, request, *args, **kwargs):
        favorite = get_object_or_404(self.get_queryset(), pk=kwargs["pk"])
        theme_favorite_remove(favorite=favorite, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ------------------------------------------------------------------ usage

class UsageViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Usage logs (staff: everyone's; others: their own) and ``summary`` totals by day,
    provider, model, LoRA and user. Filters: provider, model, kind, user, date_from, date_to."""

    serializer_class = UsageLogSerializer
    filterset_class = UsageFilter
    queryset = UsageLog.objects.none()

    def get_queryset(self):
        return selectors.usage_list(user=self.request.user)

    @extend_schema(parameters=[UsageSummaryQuerySerializer], responses={200: dict})
    @action(detail=False, methods=["get"])
    def summary(self, request):
        """``{"overall", "by_day", "by_provider", "by_model", "by_lora", "by_user"}``; each
        counter set is ``{"generations", "images", "cost" (USD), "seconds"}``."""
        from datetime import timedelta

        from django.utils import timezone

        logs = self.filter_queryset(self.get_queryset())
        days = _valid(UsageSummaryQuerySerializer, request.query_params).get("days")
        if days is not None:
            logs = logs.filter(created_at__gte=timezone.now() - timedelta(days=days))
        return Response(selectors.usage_summary(logs=logs))
