from django.urls import path, re_path

from .consumers import JobConsumer, NotFoundConsumer

websocket_urlpatterns = [
    path("ws/jobs/", JobConsumer.as_asgi()),
    path("ws/jobs/<uuid:job_id>/", JobConsumer.as_asgi()),
    re_path(r"", NotFoundConsumer.as_asgi()),  # last: every other path is 4404
]
