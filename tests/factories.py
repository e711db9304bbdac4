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
