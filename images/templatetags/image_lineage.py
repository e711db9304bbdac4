"""Template tags of the image detail page's lineage (issue 15): what made the image, its
source, the images derived from it and the "generate again" link.

``{% load image_lineage %}`` then ``{% image_lineage image as lineage %}`` (the dict of
``images.selectors.image_lineage`` for the page's user) and
``{% generate_again_url image %}``.
"""

from django import template

from ..selectors import image_lineage as lineage_select
from ..selectors_pages import image_generate_again_url

register = template.Library()


@register.simple_tag(takes_context=True)
def image_lineage(context, image):
    request = context.get("request")
    return lineage_select(image=image, user=getattr(request, "user", None))


@register.simple_tag
def generate_again_url(image):
    return image_generate_again_url(image=image)
