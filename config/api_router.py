"""The one DRF router; every app registers its ViewSets here."""

from rest_framework.routers import DefaultRouter

from images.api.views import ImageViewSet
from jobs.api.views import JobViewSet

router = DefaultRouter()
router.register("jobs", JobViewSet, basename="job")
router.register("images", ImageViewSet, basename="image")

app_name = "api"
urlpatterns = router.urls
