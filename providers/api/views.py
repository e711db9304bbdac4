"""Providers API: listing, health, models, model profiles, prompt enhancement (thin views)."""

from django.db.models import ProtectedError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from core.exceptions import ApplicationError
from core.schema import api_errors

from ..models import ModelProfile
from ..selectors import provider_health_list, provider_list, provider_models_list
from ..services import model_profile_save, prompt_enhance
from .serializers import (
    EnhanceResponseSerializer,
    EnhanceSerializer,
    ModelProfileSerializer,
    ProviderHealthSerializer,
    ProviderModelsSerializer,
    ProviderSerializer,
)

REFRESH = OpenApiParameter("refresh", bool, required=False,
                           description="Staff only: skip the short cache.")


def _refresh(request) -> bool:
    return request.user.is_staff and request.query_params.get("refresh") in ("1", "true")


class ProviderListView(APIView):
    """Every provider of ``IMAGE_PROVIDERS``: configured or not, queue, capabilities."""

    @extend_schema(responses=ProviderSerializer(many=True))
    def get(self, request):
        return Response(ProviderSerializer(provider_list(), many=True,
                                           context={"request": request}).data)


class ProviderHealthView(APIView):
    """Per provider: configured, reachable, latency (ms), last error; cached briefly."""

    @extend_schema(responses=ProviderHealthSerializer(many=True), parameters=[REFRESH])
    def get(self, request):
        return Response(ProviderHealthSerializer(
            provider_health_list(refresh=_refresh(request)), many=True,
            context={"request": request}).data)


class ProviderModelsView(APIView):
    """Models each provider can serve (remote catalogues, local checkpoints)."""

    @extend_schema(responses=ProviderModelsSerializer(many=True), parameters=[REFRESH])
    def get(self, request):
        return Response(ProviderModelsSerializer(
            provider_models_list(refresh=_refresh(request)), many=True,
            context={"request": request}).data)


class CheckpointSyncSerializer(serializers.Serializer):
    """What ``POST /api/model-profiles/sync/`` did (slugs of the profiles)."""

    created = serializers.ListField(child=serializers.CharField())
    updated = serializers.ListField(child=serializers.CharField())
    disabled = serializers.ListField(child=serializers.CharField())
    unchanged = serializers.IntegerField()
    skipped = serializers.ListField(child=serializers.CharField(),
                                    help_text="Files that a hand-made profile already uses.")
    roots = serializers.ListField(child=serializers.CharField())


class IsStaffOrReadOnly(permissions.BasePermission):
    """Read for authenticated users, write for staff."""

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        return request.method in permissions.SAFE_METHODS or request.user.is_staff


@api_errors(409, actions=("destroy",))  # profile_in_use
@api_errors(403, actions=("sync",))
class ModelProfileViewSet(viewsets.ModelViewSet):
    """Model profiles (provider + pipeline type + model + defaults), by slug. Staff write;
    an unknown provider or pipeline type is 400; deleting a profile that generation requests
    used is 409 ``profile_in_use`` (they keep it as their record; disable it instead)."""

    serializer_class = ModelProfileSerializer
    permission_classes = [IsStaffOrReadOnly]
    lookup_field = "slug"
    queryset = ModelProfile.objects.all()

    @extend_schema(request=None, responses=CheckpointSyncSerializer)
    @action(detail=False, methods=["post"], url_path="sync")
    def sync(self, request):
        """Sync the library checkpoints under CHECKPOINT_ROOTS into profiles now
        (docs/checkpoints.md#sync). Staff or the ``loras.manage_library`` permission."""
        from loras.permissions import library_manage_check

        from ..checkpoints import checkpoints_sync

        library_manage_check(request.user)  # 403 permission_denied
        return Response(checkpoints_sync())

    def get_permissions(self):
        if getattr(self, "action", None) == "sync":
            return [permissions.IsAuthenticated()]
        return super().get_permissions()

    def perform_create(self, serializer):
        serializer.instance = model_profile_save(profile=ModelProfile(),
                                                 data=serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = model_profile_save(profile=serializer.instance,
                                                 data=serializer.validated_data)

    def perform_destroy(self, instance):
        try:
            instance.delete()
        except ProtectedError as exc:
            raise ApplicationError(
                "profile_in_use",
                f"Model profile {instance.slug!r} is used by {len(exc.protected_objects)} "
                "generation request(s) and cannot be deleted; set enabled=false instead.",
                status=409) from None


@api_errors(429, 503)  # the text provider rate-limits us, or none is configured/reachable
class PromptEnhanceView(APIView):
    """Rewrite a prompt with a text provider (Parasail by default)."""

    @extend_schema(request=EnhanceSerializer, responses=EnhanceResponseSerializer)
    def post(self, request):
        serializer = EnhanceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(prompt_enhance(**serializer.validated_data))
