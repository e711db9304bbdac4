from django.apps import AppConfig


class ExampleImagesConfig(AppConfig):
    name = "example_images"
    verbose_name = "Example images"
