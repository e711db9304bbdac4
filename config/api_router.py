"""The one DRF router; every app registers its ViewSets here."""

from rest_framework.routers import DefaultRouter

from images.api.views import ImageViewSet
from jobs.api.views import JobViewSet
from loras.api.views import LibraryRootViewSet, LoraViewSet

router = DefaultRouter()
router.register("jobs", JobViewSet, basename="job")
router.register("images", ImageViewSet, basename="image")
router.register("loras", LoraViewSet, basename="lora")
router.register("library-roots", LibraryRootViewSet, basename="library-root")

app_name = "api"
urlpatterns = router.urls
