"""Both compatibility APIs are in the OpenAPI schema under their own tags, with their own error
bodies; the native operations keep theirs."""

from drf_spectacular.generators import SchemaGenerator


def test_tags_and_error_bodies():
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    txt2img = paths["/sdapi/v1/txt2img"]["post"]
    assert txt2img["tags"] == ["A1111 API"]
    assert txt2img["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/A1111Error")
    generations = paths["/v1/images/generations"]["post"]
    assert generations["tags"] == ["OpenAI Images API"]
    assert generations["responses"]["401"]["content"]["application/json"]["schema"][
        "$ref"].endswith("/OpenAIError")
    assert {"a1111Basic"} <= {k for s in txt2img["security"] for k in s}
    assert {"openaiBearer"} <= {k for s in generations["security"] for k in s}
    assert paths["/api/generate/"]["post"]["tags"] == ["generate"]
    assert paths["/api/generate/"]["post"]["responses"]["400"]["content"]["application/json"][
        "schema"]["$ref"].endswith("/Error")
    a1111 = {p for p in paths if p.startswith("/sdapi/v1/")}
    assert {"/sdapi/v1/img2img", "/sdapi/v1/progress", "/sdapi/v1/interrupt",
            "/sdapi/v1/sd-models", "/sdapi/v1/loras", "/sdapi/v1/options",
            "/sdapi/v1/png-info", "/sdapi/v1/extra-single-image"} <= a1111
    assert {"/v1/images/edits", "/v1/models"} <= set(paths)
