"""Text embeddings for prompt similarity, behind a small pluggable interface.

The backend is chosen by ``settings.EMBEDDER``: a dotted path to a class with ``name`` and
``embed(texts)``, or ``"auto"`` (the default): :class:`SentenceTransformerEmbedder` when the
``sentence-transformers`` package is installed and its model loads offline, else
:class:`HashingTfidfEmbedder`. The hashing embedder needs no downloaded model: scikit-learn's
``HashingVectorizer`` maps word uni- and bi-grams to a fixed number of buckets
(``n_features``) with a stable hash, so a vector computed today stays
comparable with one computed next month without storing or refitting a vocabulary. The
"idf" part is a fixed stop-word list plus sublinear tf; a corpus-fitted idf would change every
stored vector whenever a prompt is added, which would defeat "vectors stored at save time".

:class:`SentenceTransformerEmbedder` uses a sentence-transformers model when that package and the
model are installed locally (it never downloads: ``HF_HUB_OFFLINE=1``); it is not the default
because no such package ships with Atelier. Vectors are L2-normalised, so cosine similarity is a
dot product; scores are 0..1 for the hashing embedder (non-negative features).
"""

from __future__ import annotations

import logging
import math
import os
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)

# Words that say nothing about the picture in a prompt (English stop words + prompt filler).
PROMPT_STOP_WORDS = frozenset("""
a an the and or of in on at to with by for from is are be as it its this that very
masterpiece best quality high highly detailed ultra 8k 4k hd
""".split())


class Embedder:
    """Interface: ``name`` (stored next to vectors) and ``embed(texts)``."""

    name = "base"

    def embed(self, texts: list[str]) -> list:  # pragma: no cover - interface
        """One vector per text: a dense ``list[float]`` or a sparse ``{"index": weight}``."""
        raise NotImplementedError


class HashingTfidfEmbedder(Embedder):
    """Word 1-2 gram hashing vectors (``n_features`` buckets, sublinear tf, L2 norm)."""

    def __init__(self, n_features: int = 2**12):
        from sklearn.feature_extraction.text import HashingVectorizer

        self.n_features = n_features
        self.name = f"hashing-tfidf-{n_features}"
        self._vectorizer = HashingVectorizer(
            n_features=n_features, ngram_range=(1, 2), alternate_sign=False, norm=None,
            stop_words=sorted(PROMPT_STOP_WORDS), token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b",
        )

    def embed(self, texts: list[str]) -> list[dict[str, float]]:
        """Sparse vectors ``{"<bucket>": weight}`` (JSON-friendly), L2-normalised."""
        import numpy as np

        matrix = self._vectorizer.transform(texts).tocsr()
        matrix.data = 1.0 + np.log(matrix.data)  # sublinear tf
        out = []
        for row in range(matrix.shape[0]):
            start, end = matrix.indptr[row], matrix.indptr[row + 1]
            vec = {str(int(c)): float(v)
                   for c, v in zip(matrix.indices[start:end], matrix.data[start:end], strict=True)}
            norm = math.sqrt(sum(v * v for v in vec.values()))
            out.append({k: round(v / norm, 6) for k, v in vec.items()} if norm else {})
        return out


class SentenceTransformerEmbedder(Embedder):
    """A local sentence-transformers model (``settings.EMBEDDER_MODEL``), loaded offline."""

    def __init__(self, model: str | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer  # optional dependency

        model = model or getattr(settings, "EMBEDDER_MODEL", "all-MiniLM-L6-v2")
        self._model = SentenceTransformer(model)
        self.name = f"st-{model}"

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [_normalise([float(x) for x in v]) for v in self._model.encode(list(texts))]


def _normalise(vec: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec] if norm else vec


@lru_cache(maxsize=4)
def _embedder_for(path: str) -> Embedder:
    if path == "auto":
        import importlib.util

        candidates = (["images.embeddings.SentenceTransformerEmbedder"]
                      if importlib.util.find_spec("sentence_transformers") else [])
    else:
        candidates = [path]
    for candidate in candidates:
        try:
            return import_string(candidate)()
        except Exception as exc:  # noqa: BLE001 - optional backends fall back to the built-in
            log.warning("embedder %s unavailable (%s); using hashing TF-IDF", candidate, exc)
    return HashingTfidfEmbedder()


def get_embedder() -> Embedder:
    """The configured embedder (``settings.EMBEDDER``: a dotted class path, or ``"auto"``: a
    locally installed sentence-transformers model when one loads offline, else hashing
    TF-IDF); any backend that cannot load falls back to hashing TF-IDF."""
    return _embedder_for(getattr(settings, "EMBEDDER", "auto"))


def cosine(a, b) -> float:
    """Cosine similarity of two L2-normalised vectors, both dense lists of the same length or
    both sparse dicts; 0 for mismatched or empty vectors."""
    if not a or not b or type(a) is not type(b):
        return 0.0
    if isinstance(a, dict):
        if len(b) < len(a):
            a, b = b, a
        return float(sum(v * b.get(k, 0.0) for k, v in a.items()))
    if len(a) != len(b):
        return 0.0
    return float(sum(x * y for x, y in zip(a, b, strict=True)))
