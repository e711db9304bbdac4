from django.apps import AppConfig


class CompatConfig(AppConfig):
    """Adapters that speak other tools' APIs (A1111's ``/sdapi/v1/``, OpenAI's ``/v1/``) on top
    of Atelier's services and jobs."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "compat"
    verbose_name = "Compatibility APIs"

    def ready(self):
        from . import schema  # noqa: F401 - registers the OpenAPI auth extensions
