import factory
from django.contrib.auth import get_user_model

from providers.models import ModelProfile


def _now():
    from django.utils import timezone

    return timezone.now()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Faker("user_name")
    password = factory.PostGenerationMethodCall("set_password", "pw-123456")


class ModelProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelProfile
        django_get_or_create = ("slug",)

    name = factory.LazyAttribute(lambda o: o.slug.title())
    slug = "fake"
    provider = "fake"
    pipeline_type = "fake"
    default_width = 64
    default_height = 64
    default_steps = 4
    default_guidance_scale = 5.0
    max_width = 512
    max_height = 512
    is_default = True


# ---------------------------------------------------------------- images library (#6)

def _png(color=(120, 60, 200), size=(16, 16), fmt="PNG") -> bytes:
    import io

    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def _content(data: bytes, name: str):
    from django.core.files.base import ContentFile

    return ContentFile(data, name=name)


class ImageFactory(factory.django.DjangoModelFactory):
    """An Image row with a real 16x16 PNG file and WebP thumbnail."""

    class Meta:
        model = "images.Image"

    user = factory.SubFactory(UserFactory)
    file = factory.LazyFunction(lambda: _content(_png(), "img.png"))
    thumbnail = factory.LazyFunction(lambda: _content(_png(fmt="WEBP"), "img.webp"))
    width = 16
    height = 16
    seed = factory.Sequence(lambda n: 1000 + n)
    steps = 4
    guidance_scale = 5.0
    prompt = "a lighthouse at night, stormy sea"
    provider = "fake"
    model_name = "Fake"
    loras = factory.LazyFunction(list)


# ---------------------------------------------------------------- LoRA library and jobs (#12)

class LibraryRootFactory(factory.django.DjangoModelFactory):
    """A LibraryRoot row. ``path`` defaults to a unique absolute path that need not exist; pass
    ``path=str(tmp_path / "loras")`` when files will be written under it."""

    class Meta:
        model = "loras.LibraryRoot"
        django_get_or_create = ("path",)

    path = factory.Sequence(lambda n: f"/nonexistent/atelier-root-{n}")
    name = factory.LazyAttribute(lambda o: o.path.rstrip("/").rsplit("/", 1)[-1])


class LoraFactory(factory.django.DjangoModelFactory):
    """A present LoraModel row in a root, named ``lora<n>`` at ``<name>.safetensors``.

    ``LoraFactory(content=data)`` also writes ``data`` (bytes, e.g.
    ``tests.support.fake_civitai.safetensors_bytes()``) to the file's path under its root and
    records its real ``size``, ``sha256``, ``mtime`` and ``inode``; without ``content`` no file
    is written and the hash is a made-up 64-hex value.
    """

    class Meta:
        model = "loras.LoraModel"

    root = factory.SubFactory(LibraryRootFactory)
    name = factory.Sequence(lambda n: f"lora{n}")
    folder = ""
    file_name = factory.LazyAttribute(lambda o: f"{o.name}.safetensors")
    relative_path = factory.LazyAttribute(
        lambda o: f"{o.folder}/{o.file_name}" if o.folder else o.file_name)
    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    size = 1024
    base_model = "SD 1.5"
    trigger_words = factory.LazyFunction(lambda: ["trig"])

    @factory.post_generation
    def content(obj, create, extracted, **kwargs):
        if extracted is None:
            return
        import hashlib
        import os

        path = obj.abs_path
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(extracted)
        st = os.stat(path)
        obj.size, obj.mtime, obj.inode = st.st_size, st.st_mtime, st.st_ino
        obj.sha256 = hashlib.sha256(extracted).hexdigest()
        if create:
            obj.save(update_fields=["size", "mtime", "inode", "sha256"])


class JobFactory(factory.django.DjangoModelFactory):
    """A Job row (``queued`` by default). Traits: ``running=True`` (started now), ``paused=True``,
    ``finished=True`` (succeeded now)."""

    class Meta:
        model = "jobs.Job"

    kind = "test"
    user = factory.SubFactory(UserFactory)
    status = "queued"

    class Params:
        running = factory.Trait(status="running",
                                started_at=factory.LazyFunction(_now))
        paused = factory.Trait(status="paused", pause_requested=False,
                               started_at=factory.LazyFunction(_now))
        finished = factory.Trait(status="succeeded", progress=1.0,
                                 started_at=factory.LazyFunction(_now),
                                 finished_at=factory.LazyFunction(_now))
