from django.urls import path

from . import views

urlpatterns = [
    path("", views.generate_page, name="generate"),
    path("gallery/", views.gallery_page, name="gallery"),
    path("images/<int:pk>/", views.image_detail_page, name="image-detail"),
]
