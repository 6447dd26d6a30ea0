"""Text embedders: Gemini when configured, otherwise a local hashed n-gram embedder.

The local embedder needs no network and no model: words, word bigrams and character 3-5-grams
are hashed (keyed BLAKE2b, so every process agrees) into signed buckets of a fixed-size vector,
which is a fixed-seed sparse random projection of the n-gram counts; the result is L2-normalised.
Texts sharing words or word pieces ("hip-hop" / "hiphop", "spin" / "spinning") end up close.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from choreography.search.spaces import FloatArray, l2_normalise_rows
from schemas.errors import ConfigurationError, InvalidInput, PermanentError, TransientError
from schemas.settings import VectorSearchSettings

log = logging.getLogger(__name__)

LOCAL_TEXT_DIM = 384
_HASH_KEY = b"choreo-local-hash-ngram-v1"
_WORD = re.compile(r"[a-z0-9]+")
# Words that carry no meaning about a move; without this, "a" and "the" make texts look alike.
_STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "the",
        "to",
        "with",
        "this",
        "that",
    }
)
_WEIGHTS = {"word": 1.0, "bigram": 0.7, "chars": 0.5}
# Gemini's batch endpoint takes at most 100 texts per request.
_GEMINI_BATCH = 100


class TextEmbedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of one named space."""

    @property
    def space(self) -> str:
        """Name of the space the vectors live in."""
        ...

    def embed(self, texts: Sequence[str], *, query: bool = False) -> FloatArray:
        """Embed ``texts`` (documents, or search queries when ``query``) as ``(n, dim)``."""
        ...


class LocalTextEmbedder:
    """Hashed word + character n-gram embedder: deterministic, offline, no model download."""

    def __init__(self, dim: int = LOCAL_TEXT_DIM) -> None:
        if dim < 16:
            raise InvalidInput(f"local text embedding dim must be at least 16, got {dim}")
        self.dim = dim

    @property
    def space(self) -> str:
        """Name of the space, including the dimension."""
        return f"local-hash-ngram-v1-{self.dim}"

    def embed(self, texts: Sequence[str], *, query: bool = False) -> FloatArray:
        """Embed texts; ``query`` is accepted for the protocol and changes nothing here."""
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(_checked_texts(texts)):
            for feature, weight in text_features(text):
                digest = hashlib.blake2b(feature.encode(), digest_size=8, key=_HASH_KEY).digest()
                value = int.from_bytes(digest, "little")
                sign = 1.0 if value & 1 else -1.0
                rows[row, (value >> 1) % self.dim] += sign * weight
        if np.any(~rows.any(axis=1)):
            empty = [t for t, r in zip(texts, rows, strict=True) if not r.any()]
            raise InvalidInput(f"text has no words to embed: {empty[0]!r}")
        return l2_normalise_rows(rows, "text embeddings")


def text_features(text: str) -> list[tuple[str, float]]:
    """The weighted features the local embedder hashes: words, bigrams and char n-grams."""
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS]
    features = [(f"w:{w}", _WEIGHTS["word"]) for w in words]
    features += [(f"b:{a}_{b}", _WEIGHTS["bigram"]) for a, b in itertools.pairwise(words)]
    for word in words:
        padded = f"<{word}>"
        grams = [padded[i : i + n] for n in (3, 4, 5) for i in range(len(padded) - n + 1)]
        # Each word's n-grams share one word's weight, so long words do not dominate.
        features += [(f"c:{g}", _WEIGHTS["chars"] / len(grams)) for g in grams]
    return features


class GeminiTextEmbedder:
    """Gemini embeddings through google-genai; the client is created on first use."""

    def __init__(
        self, api_key: str, model: str, dim: int, base_url: str = "", client: Any = None
    ) -> None:
        if not api_key and client is None:
            raise ConfigurationError("GEMINI_API_KEY is empty: Gemini embeddings need a key")
        if not model:
            raise ConfigurationError("GEMINI_EMBEDDING_MODEL is empty")
        if dim < 1:
            raise ConfigurationError(f"GEMINI_EMBEDDING_DIM must be positive, got {dim}")
        self._api_key, self.model, self.dim, self._base_url = api_key, model, dim, base_url
        self._client = client

    @property
    def space(self) -> str:
        """Name of the space: the model and the output dimension."""
        return f"gemini:{self.model}-{self.dim}"

    def embed(self, texts: Sequence[str], *, query: bool = False) -> FloatArray:
        """Embed texts with Gemini (retrieval query or document task type)."""
        # Imported on first use: google-genai is heavy and only needed with a key.
        from google.genai import errors, types  # noqa: PLC0415

        checked = _checked_texts(texts)
        config = types.EmbedContentConfig(
            output_dimensionality=self.dim,
            task_type="RETRIEVAL_QUERY" if query else "RETRIEVAL_DOCUMENT",
        )
        vectors: list[list[float]] = []
        for start in range(0, len(checked), _GEMINI_BATCH):
            batch = list(checked[start : start + _GEMINI_BATCH])
            try:
                response = self._client_or_new().models.embed_content(
                    model=self.model, contents=batch, config=config
                )
            except errors.APIError as error:
                raise _gemini_error(error, self.model) from error
            embeddings = response.embeddings or []
            if len(embeddings) != len(batch):
                raise TransientError(
                    f"Gemini {self.model} returned {len(embeddings)} embeddings for {len(batch)}"
                )
            vectors += [list(e.values or []) for e in embeddings]
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.shape != (len(checked), self.dim):
            raise PermanentError(
                f"Gemini {self.model} returned vectors of shape {matrix.shape}, "
                f"expected ({len(checked)}, {self.dim}) (GEMINI_EMBEDDING_DIM)"
            )
        # Reduced-dimension Gemini vectors are not unit length; cosine needs them to be.
        return l2_normalise_rows(matrix, f"Gemini {self.model} embeddings")

    def _client_or_new(self) -> Any:
        if self._client is None:
            from google import genai  # noqa: PLC0415 - see embed()
            from google.genai import types  # noqa: PLC0415

            options = types.HttpOptions(base_url=self._base_url) if self._base_url else None
            self._client = genai.Client(api_key=self._api_key, http_options=options)
        return self._client


def text_embedder_from_settings(settings: VectorSearchSettings) -> TextEmbedder:
    """Gemini when ``GEMINI_API_KEY`` is set, the local embedder otherwise (logged)."""
    key = settings.gemini_api_key.get_secret_value()
    if key:
        return GeminiTextEmbedder(
            key,
            settings.gemini_embedding_model,
            settings.gemini_embedding_dim,
            settings.gemini_base_url,
        )
    log.info("GEMINI_API_KEY is not set: using the local hashed n-gram text embedder")
    return LocalTextEmbedder(settings.local_text_embedding_dim)


def _checked_texts(texts: Sequence[str]) -> Sequence[str]:
    if isinstance(texts, str):
        raise InvalidInput("texts must be a sequence of strings, not one string")
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput(f"text to embed must be a non-empty string, got {text!r}")
    return texts


def _gemini_error(error: Any, model: str) -> Exception:
    code = int(getattr(error, "code", 0) or 0)
    detail = getattr(error, "message", "") or ""
    message = f"Gemini embeddings ({model}) failed with HTTP {code}: {detail}"
    if code in (401, 403):
        return ConfigurationError(f"{message}; check GEMINI_API_KEY")
    if code == 404:
        return ConfigurationError(f"{message}; check GEMINI_EMBEDDING_MODEL")
    if code == 429 or code >= 500:
        return TransientError(message)
    return PermanentError(message)
