"""``python manage.py generate "a prompt" --steps 4 --lora NAME:0.8`` with a progress bar.

Runs the same service as the API (validation, job, files, usage log). By default the job runs
in this process; ``--queue`` hands it to the workers and follows its progress.
"""

import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.exceptions import ApplicationError
from images.services import generation_create, generation_run
from jobs.models import Job


def _lora_arg(value: str) -> dict:
    name, _, weight = value.rpartition(":")
    if not name:
        return {"lora": value, "weight": 1.0}
    try:
        return {"lora": name, "weight": float(weight)}
    except ValueError:
        return {"lora": value, "weight": 1.0}


class Command(BaseCommand):
    help = "Generate images from a prompt and print where they were saved."

    def add_arguments(self, parser):
        parser.add_argument("prompt")
        parser.add_argument("--negative", dest="negative_prompt")
        parser.add_argument("--model", help="Model profile slug (default: the default profile).")
        parser.add_argument("--width", type=int)
        parser.add_argument("--height", type=int)
        parser.add_argument("--steps", type=int)
        parser.add_argument("--cfg", dest="guidance_scale", type=float)
        parser.add_argument("--seed", type=int)
        parser.add_argument("-n", type=int, default=1, help="Number of images.")
        parser.add_argument("--lora", action="append", default=[], type=_lora_arg,
                            metavar="NAME[:WEIGHT]", help="LoRA to apply (repeatable).")
        parser.add_argument("--user", help="Owner of the images (default: first superuser).")
        parser.add_argument("--queue", action="store_true",
                            help="Run on the workers instead of in this process.")

    def handle(self, *args, **opts):
        from django.conf import settings

        from images.api.serializers import GenerateSerializer

        if opts["queue"] and settings.CELERY_BROKER_URL.startswith("memory://"):
            raise CommandError("--queue needs REDIS_URL and running workers; without it the "
                               "job runs in this process (leave out --queue).")
        user = self._user(opts["user"])
        data = {k: opts[k] for k in ("prompt", "negative_prompt", "model", "width", "height",
                                     "steps", "guidance_scale", "seed", "n")
                if opts.get(k) is not None}
        data["loras"] = opts["lora"]
        serializer = GenerateSerializer(data=data)
        if not serializer.is_valid():
            raise CommandError("; ".join(f"{k}: {' '.join(map(str, v))}"
                                         for k, v in serializer.errors.items()))
        try:
            request = generation_create(user=user, params=serializer.validated_data,
                                        enqueue=opts["queue"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        bar = tqdm(total=request.steps, unit="step", desc=f"#{request.pk} seed {request.seed}",
                   file=self.stderr._out)

        def on_step(step, total):
            bar.total = total
            bar.n = step
            bar.refresh()

        if opts["queue"]:
            job = self._follow(request.job_id, on_step)
        else:
            job = generation_run(request_id=request.pk, listener=on_step)
        bar.close()
        if job.status != Job.Status.SUCCEEDED:
            raise CommandError(f"Job {job.status}: {job.error_code} {job.error_message}".strip())
        for image in request.images.all():
            self.stdout.write(f"{settings.MEDIA_ROOT}/{image.file.name}  "
                              f"({image.width}x{image.height}, seed {image.seed})")

    def _user(self, username):
        User = get_user_model()
        user = (User.objects.filter(username=username).first() if username else
                User.objects.filter(is_superuser=True).order_by("pk").first())
        if user is None:
            raise CommandError("No such user; run `python manage.py ensure_admin` or --user.")
        return user

    def _follow(self, job_id, on_step):
        while True:
            job = Job.objects.get(pk=job_id)
            if job.step:
                on_step(job.step, job.total_steps)
            if job.is_finished:
                return job
            time.sleep(0.2)
