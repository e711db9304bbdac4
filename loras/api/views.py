"""The LoRA library API: ``/api/loras/`` and ``/api/library-roots/``.

Permissions (``loras.permissions``, docs/library.md#who-may-change-the-library): every
endpoint needs a signed-in user, who reads the library and keeps their own favourites
(``PATCH {"favorite": ...}``); every change to the shared files or fields (patch of other
fields, rename, move, trash, restore, exclude, preview, auto-organize) needs staff or the
``loras.manage_library`` permission (403 ``permission_denied``); creating, changing and
deleting library roots needs staff.
"""

from __future__ import annotations

import mimetypes

from django.db.models import Count, Q
from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from core.exceptions import ApplicationError
from core.pagination import CappedCountPagination
from core.schema import api_errors
from jobs.api.serializers import JobAcceptedSerializer, accepted_response

from .. import selectors
from ..favorites import favorites_annotate, lora_favorite_set
from ..filters import LoraFilter
from ..models import LibraryRoot, LoraModel
from ..permissions import ManagesLibrary, library_manage_check
from ..services.library import (
    lora_bulk_move,
    lora_bulk_trash,
    lora_move,
    lora_preview_file,
    lora_preview_from_url,
    lora_preview_upload,
    lora_rename,
    lora_restore,
    lora_set_excluded,
    lora_trash,
    lora_update,
)
from ..services.organize import organize_plan, organize_start
from .serializers import (
    BulkIdsSerializer,
    BulkMoveSerializer,
    BulkResultSerializer,
    ExcludeSerializer,
    LibraryRootSerializer,
    LoraDetailSerializer,
    LoraPatchSerializer,
    LoraSerializer,
    LoraTrashedSerializer,
    MoveSerializer,
    OrganizeSerializer,
    PreviewUrlSerializer,
    RenameSerializer,
    TrashEntrySerializer,
)


class LoraPagination(CappedCountPagination):
    """50 per page by default, ``?page_size=`` up to 100; the count is capped
    (``PAGINATION_COUNT_CAP``, core/pagination.py) so 100,000 rows list fast."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100


def _valid(serializer_class, data, **kwargs):
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# Response shapes of the library actions (for the schema; the views build plain dicts).
BULK_RESULTS = inline_serializer("LoraBulkResults", {"results": BulkResultSerializer(many=True)})
TAG_COUNT = inline_serializer("LoraTagCount", {"tag": serializers.CharField(),
                                               "count": serializers.IntegerField()}, many=True)
BASE_MODEL_COUNT = inline_serializer("LoraBaseModelCount", {
    "base_model": serializers.CharField(), "count": serializers.IntegerField()}, many=True)
FOLDER_TREE = inline_serializer("LoraFolderTree", {
    "root": inline_serializer("LoraFolderRoot", {"id": serializers.IntegerField(),
                                                 "name": serializers.CharField()}),
    "folders": inline_serializer("LoraFolderCount", {"path": serializers.CharField(),
                                                     "count": serializers.IntegerField()},
                                 many=True)}, many=True)
# Actions on the collection that are not the list: no pagination, no list filters.
PLAIN = {"pagination_class": None, "filter_backends": []}


def _truthy(value) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


class LoraViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The LoRA library: list (filters in ``loras.filters``), detail, patch, trash, and the
    library actions. Trashed LoRAs are never listed; ``restore`` reaches them."""

    throttle_scope = None  # per action (core.throttling.CostRateThrottle)
    serializer_class = LoraSerializer
    pagination_class = LoraPagination
    filterset_class = LoraFilter
    lookup_value_regex = r"\d+"
    queryset = LoraModel.objects.none()
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    permission_classes = [ManagesLibrary]
    # Unsafe methods any signed-in user may call: PATCH checks its fields itself (a favourite
    # is the caller's own; the other fields are the library's).
    OPEN_ACTIONS = ("partial_update",)

    def get_permissions(self):
        if self.action in self.OPEN_ACTIONS:
            return [permissions.IsAuthenticated()]
        request = getattr(self, "request", None)
        if self.action == "auto_organize" and request is not None and _truthy(
                request.query_params.get("dry_run", "")):
            return [permissions.IsAuthenticated()]  # a plan changes nothing
        return super().get_permissions()

    def get_queryset(self):
        qs = favorites_annotate(selectors.lora_queryset(), self.request.user)
        return qs.defer(*selectors.LIST_DEFERRED) if self.action == "list" else qs

    def get_serializer_class(self):
        return LoraDetailSerializer if self.action == "retrieve" else LoraSerializer

    def get_object(self):
        return selectors.lora_get(pk=self.kwargs["pk"])

    @extend_schema(request=LoraPatchSerializer, responses=LoraDetailSerializer)
    def partial_update(self, request, pk=None):
        """Change your own ``favorite`` (any signed-in user), or the library's tags, notes,
        trigger words, base model, preferred weight, NSFW level, tips (library managers)."""
        lora = self.get_object()
        data = _valid(LoraPatchSerializer, request.data)
        if set(data) - {"favorite"}:
            library_manage_check(request.user)
        if "favorite" in data:
            lora_favorite_set(lora=lora, user=request.user, favorite=data.pop("favorite"))
        lora = lora_update(lora=lora, data=data)
        return Response(LoraDetailSerializer(lora, context={"request": request}).data)

    @extend_schema(request=None, responses={200: LoraTrashedSerializer})
    @api_errors(409)  # already in the trash
    def destroy(self, request, pk=None):
        """Move the file and its sidecars to the trash (restorable)."""
        entry = lora_trash(lora=self.get_object())
        return Response({"id": entry.lora_id, "status": LoraModel.Status.TRASHED,
                         "trash_entry": TrashEntrySerializer(entry).data})

    @extend_schema(request=None, responses=LoraDetailSerializer)
    @action(detail=True, methods=["post"])
    @api_errors(409)  # not in the trash, or its original path is taken
    def restore(self, request, pk=None):
        """Bring a trashed LoRA's file and sidecars back to their original paths."""
        lora = lora_restore(lora=selectors.lora_get(pk=pk, include_trashed=True))
        return Response(LoraDetailSerializer(lora, context={"request": request}).data)

    @extend_schema(request=RenameSerializer, responses=LoraDetailSerializer)
    @action(detail=True, methods=["post"])
    @api_errors(409)  # the name is taken
    def rename(self, request, pk=None):
        """Rename the file (new stem) and every sidecar together."""
        lora = self.get_object()
        lora = lora_rename(lora=lora, name=_valid(RenameSerializer, request.data)["name"])
        return Response(LoraDetailSerializer(lora, context={"request": request}).data)

    @extend_schema(request=MoveSerializer, responses=LoraDetailSerializer)
    @action(detail=True, methods=["post"])
    @api_errors(409)  # the target path is taken
    def move(self, request, pk=None):
        """Move the file and its sidecars into ``folder`` (of ``root``, default its own)."""
        lora = self.get_object()
        data = _valid(MoveSerializer, request.data)
        lora = lora_move(lora=lora, folder=data["folder"], root=data.get("root"))
        return Response(LoraDetailSerializer(lora, context={"request": request}).data)

    @extend_schema(request=BulkMoveSerializer, responses=BULK_RESULTS)
    @action(detail=False, methods=["post"], url_path="bulk-move", **PLAIN)
    def bulk_move(self, request):
        """Move several LoRAs; ``{results: [{id, ok, code?, message?}]}``."""
        data = _valid(BulkMoveSerializer, request.data)
        results = lora_bulk_move(ids=data["ids"], folder=data["folder"], root=data.get("root"))
        return Response({"results": results})

    @extend_schema(request=BulkIdsSerializer, responses=BULK_RESULTS)
    @action(detail=False, methods=["post"], url_path="bulk-delete", **PLAIN)
    def bulk_delete(self, request):
        """Trash several LoRAs; ``{results: [{id, ok, code?, message?}]}``."""
        data = _valid(BulkIdsSerializer, request.data)
        return Response({"results": lora_bulk_trash(ids=data["ids"])})

    @extend_schema(request=ExcludeSerializer, responses=LoraDetailSerializer)
    @action(detail=True, methods=["post"])
    def exclude(self, request, pk=None):
        """Exclude from lists and auto-organize (``{excluded: true}``) or include again."""
        lora = lora_set_excluded(lora=self.get_object(),
                                 excluded=_valid(ExcludeSerializer, request.data)["excluded"])
        return Response(LoraDetailSerializer(lora, context={"request": request}).data)

    @extend_schema(methods=["GET"], request=None, responses={(200, "image/*"): bytes})
    @extend_schema(methods=["POST"], request={
        "application/json": PreviewUrlSerializer,
        "multipart/form-data": inline_serializer("LoraPreviewUpload",
                                                 {"file": serializers.ImageField()})},
        responses=LoraDetailSerializer)
    @action(detail=True, methods=["get", "post"], throttle_scope="preview_upload")  # POST only
    def preview(self, request, pk=None):
        """GET: the preview image. POST: replace it with an uploaded ``file`` (multipart) or
        the image at ``{url}`` (allowed hosts only)."""
        lora = self.get_object()
        if request.method == "GET":
            path = lora_preview_file(lora=lora)
            content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
            return FileResponse(open(path, "rb"), content_type=content_type)
        upload = request.FILES.get("file")
        if upload is not None:
            lora = lora_preview_upload(lora=lora, upload=upload)
        elif hasattr(request.data, "get") and request.data.get("url"):
            lora = lora_preview_from_url(lora=lora,
                                         url=_valid(PreviewUrlSerializer, request.data)["url"])
        else:
            raise ApplicationError("invalid", "Send a multipart 'file' or a JSON 'url'.",
                                   fields={"file": ["Required (or 'url')."]})
        return Response(LoraDetailSerializer(lora, context={"request": request}).data)

    def _grouped(self, groups, key):
        return Response([{key: g[key], "loras": LoraSerializer(
            g["loras"], many=True, context={"request": self.request}).data} for g in groups])

    @extend_schema(responses=inline_serializer("LoraDuplicateGroup", {
        "sha256": serializers.CharField(), "loras": LoraSerializer(many=True)}, many=True))
    @action(detail=False, methods=["get"], **PLAIN)
    def duplicates(self, request):
        """Groups of LoRAs sharing a sha256: ``[{sha256, loras: [...]}]``."""
        return self._grouped(selectors.lora_duplicates(), "sha256")

    @extend_schema(responses=inline_serializer("LoraNameConflictGroup", {
        "name": serializers.CharField(), "loras": LoraSerializer(many=True)}, many=True))
    @action(detail=False, methods=["get"], url_path="filename-conflicts", **PLAIN)
    def filename_conflicts(self, request):
        """Groups of LoRAs sharing a name across folders/roots: ``[{name, loras: [...]}]``."""
        return self._grouped(selectors.lora_filename_conflicts(), "name")

    @extend_schema(parameters=[OpenApiParameter("limit", int, description="default 20, ≤ 500")],
                   responses=TAG_COUNT)
    @action(detail=False, methods=["get"], url_path="top-tags", **PLAIN)
    def top_tags(self, request):
        """``[{tag, count}]``, most used first."""
        try:
            limit = min(max(int(request.query_params.get("limit", 20)), 1), 500)
        except ValueError:
            raise ApplicationError("invalid", "limit: an integer.",
                                   fields={"limit": ["An integer."]}) from None
        return Response(selectors.lora_top_tags(limit=limit))

    @extend_schema(responses=FOLDER_TREE)
    @action(detail=False, methods=["get"], **PLAIN)
    def folders(self, request):
        """``[{root: {id, name}, folders: [{path, count}]}]`` (counts include sub-folders)."""
        return Response([{"root": {"id": t["root"].pk, "name": t["root"].name},
                          "folders": t["folders"]} for t in selectors.lora_folders()])

    @extend_schema(responses=BASE_MODEL_COUNT)
    @action(detail=False, methods=["get"], url_path="base-models", **PLAIN)
    def base_models(self, request):
        """``[{base_model, count}]``."""
        return Response(selectors.lora_base_models())

    @extend_schema(request=OrganizeSerializer,
                   parameters=[OpenApiParameter("dry_run", bool)],
                   responses={200: dict, 202: JobAcceptedSerializer})
    @action(detail=False, methods=["post"], url_path="auto-organize",
            throttle_scope="auto_organize", **PLAIN)
    @api_errors(409, 503)  # an organize job runs; the broker is down
    def auto_organize(self, request):
        """``?dry_run=1``: the plan ``{moves, conflicts}`` (nothing changes); otherwise 202 with
        a ``lora_organize`` Job (409 ``job_running`` when one runs)."""
        template = _valid(OrganizeSerializer, request.data).get("template")
        if _truthy(request.query_params.get("dry_run", "")):
            return Response(organize_plan(template=template))
        job = organize_start(user=request.user, template=template)
        return accepted_response(job)


class IsStaffOrReadOnly(permissions.BasePermission):
    """Reads for authenticated users; writes for staff."""

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        return request.method in permissions.SAFE_METHODS or request.user.is_staff


@api_errors(409, actions=("update", "partial_update", "destroy"))  # root_in_use
class LibraryRootViewSet(viewsets.ModelViewSet):
    """Library roots: folders of LoRA files. Staff create, change and delete them; a root that
    still holds LoRAs cannot be deleted (409 ``root_in_use``)."""

    serializer_class = LibraryRootSerializer
    permission_classes = [IsStaffOrReadOnly]
    pagination_class = None

    def get_queryset(self):
        return LibraryRoot.objects.annotate(
            lora_count=Count("loras", filter=~Q(loras__status=LoraModel.Status.TRASHED)))

    def perform_update(self, serializer):
        instance = serializer.instance
        new_path = serializer.validated_data.get("path", instance.path)
        if new_path != instance.path and instance.loras.exists():
            raise ApplicationError("root_in_use", "The root has LoRAs; its path cannot change "
                                   "(add a new root and move them).", status=409)
        serializer.save()

    def perform_destroy(self, instance):
        if instance.loras.exists() or instance.trash_entries.exists() or \
                instance.downloads.exists():
            raise ApplicationError("root_in_use", "The root still has LoRAs (or trash entries or "
                                   "downloads); move or delete them first.", status=409)
        instance.delete()
