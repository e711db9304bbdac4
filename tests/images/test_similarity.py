"""Prompt similarity: embeddings stored at save time, expected neighbours on a fixed set."""

import pytest

from images import embeddings
from images.models import PromptHelper
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PROMPTS = {
    "cat-window": "a fluffy orange cat sleeping on a sunny window sill",
    "cat-garden": "a black cat hunting in a garden at dusk",
    "lighthouse": "a lighthouse on a rocky coast in a storm, crashing waves",
    "harbor": "fishing boats in a small harbor, stormy sea, waves",
    "city": "neon city street at night, rain, cyberpunk",
    "portrait": "portrait of an old man with a white beard, oil painting",
}


@pytest.fixture
def helpers(api_client):
    out = {}
    for name, prompt in PROMPTS.items():
        resp = api_client.post("/api/prompt-helpers/", {"name": name, "prompt": prompt},
                               format="json")
        assert resp.status_code == 201
        out[name] = resp.json()["id"]
    return out


def similar(client, q, k=3):
    resp = client.get("/api/prompt-helpers/similar/", {"q": q, "k": k})
    assert resp.status_code == 200, resp.content
    return resp.json()


@pytest.mark.parametrize("query, expected_top, expected_second", [
    ("cat sleeping in the sun", "cat-window", "cat-garden"),
    ("storm waves on the coast", "lighthouse", "harbor"),
    ("rainy neon street", "city", None),
    ("oil painting portrait of a man", "portrait", None),
])
def test_expected_neighbours(api_client, helpers, query, expected_top, expected_second):
    data = similar(api_client, query)
    names = [r["name"] for r in data["results"]]
    assert names[0] == expected_top
    if expected_second:
        assert names[1] == expected_second
    scores = [r["score"] for r in data["results"]]
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= scores[0] <= 1.0
    assert data["embedder"].startswith("hashing-tfidf")


def test_only_own_helpers_and_k(api_client, helpers):
    other = UserFactory(username="bob")
    PromptHelper.objects.create(owner=other, name="bob-cat", prompt="cat sleeping in the sun",
                                embedding=embeddings.get_embedder().embed(
                                    ["cat sleeping in the sun"])[0],
                                embedder=embeddings.get_embedder().name)
    data = similar(api_client, "cat sleeping in the sun", k=1)
    assert [r["name"] for r in data["results"]] == ["cat-window"]


def test_vectors_are_stored_not_recomputed(api_client, helpers, monkeypatch):
    stored = PromptHelper.objects.get(pk=helpers["city"]).embedding
    assert stored and isinstance(stored, dict)
    calls = []
    real = embeddings.HashingTfidfEmbedder.embed

    def counting(self, texts):
        calls.append(list(texts))
        return real(self, texts)

    monkeypatch.setattr(embeddings.HashingTfidfEmbedder, "embed", counting)
    similar(api_client, "neon rain")
    assert calls == [["neon rain"]]  # only the query is embedded per request


def test_hashing_vectors_are_stable_and_normalised():
    a = embeddings.HashingTfidfEmbedder().embed(["a lighthouse in a storm"])[0]
    b = embeddings.HashingTfidfEmbedder().embed(["a lighthouse in a storm"])[0]
    assert a == b
    assert abs(sum(v * v for v in a.values()) - 1.0) < 1e-4
    assert embeddings.cosine(a, b) == pytest.approx(1.0, abs=1e-4)


def test_missing_query_is_400(api_client):
    resp = api_client.get("/api/prompt-helpers/similar/")
    assert resp.status_code == 400 and resp.json()["fields"]["q"]


def test_vectors_of_another_embedder_are_recomputed_once(api_client, helpers):
    PromptHelper.objects.filter(pk=helpers["city"]).update(embedding=[0.5, 0.5],
                                                           embedder="old-model")
    data = similar(api_client, "neon city at night")
    assert data["results"][0]["name"] == "city"
    helper = PromptHelper.objects.get(pk=helpers["city"])
    assert helper.embedder == data["embedder"] and isinstance(helper.embedding, dict)
