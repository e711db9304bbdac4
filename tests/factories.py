import factory
from django.contrib.auth import get_user_model

from providers.models import ModelProfile


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
