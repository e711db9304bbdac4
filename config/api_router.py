"""The one DRF router; every app registers its ViewSets here."""

from rest_framework.routers import DefaultRouter

from images.api.views_library import (
    GalleryViewSet,
    ImageViewSet,
    ProjectViewSet,
    PromptHelperViewSet,
    StyleViewSet,
    TagViewSet,
    ThemeFavoriteViewSet,
    ThemeViewSet,
    UsageViewSet,
    UserImagesViewSet,
)
from jobs.api.views import JobViewSet
from loras.api.views import LibraryRootViewSet, LoraViewSet
from providers.api.views import ModelProfileViewSet

router = DefaultRouter()
router.register("jobs", JobViewSet, basename="job")
router.register("images", ImageViewSet, basename="image")
router.register("gallery", GalleryViewSet, basename="gallery")
router.register("user-images", UserImagesViewSet, basename="user-image")
router.register("styles", StyleViewSet, basename="style")
router.register("tags", TagViewSet, basename="tag")
router.register("image-projects", ProjectViewSet, basename="image-project")
router.register("prompt-helpers", PromptHelperViewSet, basename="prompt-helper")
router.register("theme-helpers", ThemeViewSet, basename="theme-helper")
router.register("theme-favorites", ThemeFavoriteViewSet, basename="theme-favorite")
router.register("usage", UsageViewSet, basename="usage")
router.register("loras", LoraViewSet, basename="lora")
router.register("library-roots", LibraryRootViewSet, basename="library-root")
router.register("model-profiles", ModelProfileViewSet, basename="model-profile")

app_name = "api"
urlpatterns = router.urls
