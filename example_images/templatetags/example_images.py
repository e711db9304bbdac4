"""Template tags of the example-images section of the LoRA page:
``{% load example_images %}{% example_generate_profiles as profiles %}`` gives the model
profiles local generation may use (``example_images.selectors.example_generate_profiles``)."""

from django import template

from ..selectors import example_generate_profiles as profiles_select

register = template.Library()


@register.simple_tag
def example_generate_profiles():
    return profiles_select()
