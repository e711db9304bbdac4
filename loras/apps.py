from django.apps import AppConfig


class LorasConfig(AppConfig):
    name = "loras"
    verbose_name = "LoRA library"
