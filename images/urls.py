from django.urls import path

from . import views

urlpatterns = [
    path("", views.generate_page, name="generate"),
    path("gallery/", views.gallery_page, name="gallery"),
    path("images/<int:pk>/", views.image_detail_page, name="image-detail"),
    path("projects/", views.projects_page, name="projects"),
    path("projects/<int:pk>/", views.project_detail_page, name="project-detail"),
    path("usage/", views.usage_page, name="usage"),
]
