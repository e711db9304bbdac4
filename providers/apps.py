from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = "Providers"

    def ready(self):
        from celery.signals import worker_ready

        from .warmup import on_worker_ready

        worker_ready.connect(on_worker_ready, dispatch_uid="providers.warm_up")
