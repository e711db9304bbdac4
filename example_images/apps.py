from django.apps import AppConfig


def _resume_on_worker_ready(**kwargs) -> None:
    """A (non-embedded) Celery worker started: bring back the example-image download a
    restart interrupted (see ``services_download.example_downloads_resume``)."""
    import logging

    from .services.download import example_downloads_resume

    try:
        example_downloads_resume()
    except Exception:  # noqa: BLE001 - never keep a worker from starting
        logging.getLogger(__name__).exception("resuming example-image downloads failed")


class ExampleImagesConfig(AppConfig):
    name = "example_images"
    verbose_name = "Example images"

    def ready(self) -> None:
        from celery.signals import worker_ready

        from jobs.services import job_register_resumer

        from .selectors import DOWNLOAD_KIND
        from .services.download import example_download_enqueue

        job_register_resumer(kind=DOWNLOAD_KIND, resume=example_download_enqueue)

        worker_ready.connect(_resume_on_worker_ready, weak=False,
                             dispatch_uid="example_images.resume")
