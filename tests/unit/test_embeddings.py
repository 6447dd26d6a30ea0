"""Move embeddings: pose, rhythm, local and Gemini text, and the combined vector."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from google.genai import errors

from choreography.moves.model import Move
from choreography.moves.skeleton import JOINT_INDEX, rest_pose
from choreography.search.embeddings import (
    DEFAULT_WEIGHTS,
    combine_embeddings,
    embed_moves,
    move_text,
)
from choreography.search.pose_embedding import embed_pose
from choreography.search.rhythm_embedding import embed_rhythm
from choreography.search.spaces import Embedding
from choreography.search.text_embedding import (
    GeminiTextEmbedder,
    LocalTextEmbedder,
    text_embedder_from_settings,
)
from schemas.errors import ConfigurationError, InvalidInput, TransientError
from schemas.settings import VectorSearchSettings

FPS = 30.0


def motion(kind: str, seconds: float = 4.0, tempo: float = 120.0) -> np.ndarray:
    """Keypoints of a simple motion: arm ``wave``, knee ``bounce`` on the beat, or ``still``."""
    frames = int(seconds * FPS)
    t = np.arange(frames) / FPS
    beat = 2 * np.pi * tempo / 60.0
    points = np.repeat(rest_pose()[None], frames, axis=0).copy()
    if kind == "wave":
        for joint in ("l_wrist", "r_wrist", "l_elbow"):
            points[:, JOINT_INDEX[joint], 1] += 0.5 + 0.3 * np.sin(beat * t)
    elif kind == "bounce":
        points[:, :, 1] -= (0.08 * np.abs(np.sin(beat * t / 2)))[:, None]
        points[:, JOINT_INDEX["l_knee"], 2] += 0.1 * np.abs(np.sin(beat * t / 2))
    return points.astype(np.float32)


def make_move(move_id: str, kind: str, **fields: Any) -> Move:
    """A valid ``Move`` with synthetic keypoints of ``kind``."""
    defaults: dict[str, Any] = {
        "name": move_id.replace("-", " "),
        "style": "hip-hop",
        "difficulty": "beginner",
        "energy": "high",
        "tempo_bpm": 120.0,
        "counts": 8,
        "clip_uri": f"moves/{move_id}.mp4",
        "keypoints": motion(kind),
        "fps": FPS,
    }
    return Move(move_id=move_id, **{**defaults, **fields})


def cos(a: Embedding, b: Embedding) -> float:
    return float(np.dot(a.vector, b.vector))


def test_local_embedder_puts_similar_texts_closer_than_unrelated() -> None:
    """A paraphrase of a move description is closer than an unrelated description."""
    vectors = LocalTextEmbedder().embed(
        [
            "energetic hip-hop bounce with arm waves",
            "hip hop bouncing groove, waving arms, high energy",
            "slow contemporary floor roll into a lunge",
        ]
    )
    similarity = vectors @ vectors[1]
    assert similarity[0] > similarity[2] + 0.3


def test_local_embedder_is_deterministic_unit_length_and_named() -> None:
    """Two embedder instances give identical unit vectors, in a space naming the dimension."""
    a = LocalTextEmbedder(dim=64).embed(["salsa cross body lead"])
    b = LocalTextEmbedder(dim=64).embed(["salsa cross body lead"])
    assert np.array_equal(a, b)
    assert a.shape == (1, 64) and np.isclose(np.linalg.norm(a[0]), 1.0, atol=1e-6)
    assert LocalTextEmbedder(dim=64).space == "local-hash-ngram-v1-64"


def test_local_embedder_rejects_texts_without_words() -> None:
    """Blank or stop-word-only text is an error naming the text, not a zero vector."""
    with pytest.raises(InvalidInput, match="non-empty"):
        LocalTextEmbedder().embed(["   "])
    with pytest.raises(InvalidInput, match="no words"):
        LocalTextEmbedder().embed(["the and of"])


def test_pose_embedding_ignores_position_and_body_size() -> None:
    """Moving the dancer across the floor and scaling the body leaves the pose vector alone."""
    base = motion("wave")
    moved = base * 1.3 + np.array([2.0, 0.0, -1.0], dtype=np.float32)
    assert cos(embed_pose(base, FPS), embed_pose(moved, FPS)) > 0.999


def test_pose_embedding_separates_different_motions() -> None:
    """An arm wave is closer to a slower arm wave than to a knee bounce."""
    wave, slow_wave = embed_pose(motion("wave"), FPS), embed_pose(motion("wave", tempo=90), FPS)
    bounce = embed_pose(motion("bounce"), FPS)
    assert cos(wave, slow_wave) > cos(wave, bounce) + 0.1
    assert wave.space == "pose-v1-16j-128" and wave.dim == 128


def test_pose_embedding_rejects_wrong_skeleton() -> None:
    """Keypoints on another skeleton are rejected with the expected shape in the message."""
    with pytest.raises(InvalidInput, match=r"\(frames>=1, 16, 3\)"):
        embed_pose(np.zeros((10, 15, 3), np.float32), FPS)


def test_rhythm_embedding_follows_the_beat() -> None:
    """A move bouncing on its beat is closer to the same bounce at another tempo (on its beat)
    than to the same motion labelled with a tempo it does not follow."""
    on_beat = embed_rhythm(motion("bounce", tempo=120), FPS, 120.0)
    on_beat_faster = embed_rhythm(motion("bounce", tempo=128), FPS, 128.0)
    off_tempo = embed_rhythm(motion("bounce", tempo=120), FPS, 77.0)
    assert cos(on_beat, on_beat_faster) > cos(on_beat, off_tempo)
    assert on_beat.space == "rhythm-v1-32"


def test_rhythm_embedding_rejects_bad_tempo() -> None:
    """A non-positive tempo is an error naming tempo_bpm."""
    with pytest.raises(InvalidInput, match="tempo_bpm"):
        embed_rhythm(motion("bounce"), FPS, 0.0)


def test_combined_cosine_is_the_weighted_mean_of_kind_cosines() -> None:
    """cos(combined a, combined b) equals the weighted mean of pose, rhythm and text cosines."""
    a, b = embed_moves(
        [make_move("arm-wave", "wave"), make_move("knee-bounce", "bounce", style="house")],
        LocalTextEmbedder(),
    )
    expected = sum(DEFAULT_WEIGHTS[k] * cos(a[k], b[k]) for k in ("pose", "rhythm", "text"))
    got = cos(combine_embeddings(a), combine_embeddings(b))
    assert got == pytest.approx(expected, abs=1e-5)
    assert np.isclose(np.linalg.norm(combine_embeddings(a).vector), 1.0, atol=1e-5)


def test_combined_space_names_its_parts_and_rejects_bad_weights() -> None:
    """The combined space names all three spaces; weights must cover the kinds and sum to 1."""
    (vectors,) = embed_moves([make_move("arm-wave", "wave")], LocalTextEmbedder())
    space = combine_embeddings(vectors).space
    assert "pose-v1-16j-128" in space and "local-hash-ngram-v1-384" in space
    with pytest.raises(InvalidInput, match="sum to 1"):
        combine_embeddings(vectors, {"pose": 0.5, "rhythm": 0.5, "text": 0.5})


def test_move_text_includes_name_tags_and_description() -> None:
    """The text embedded for a move carries its name, style, tags and description."""
    move = make_move("arm-wave", "wave", tags=("arms", "groove"), description="Loose waves.")
    text = move_text(move)
    for part in ("arm wave", "hip-hop", "arms, groove", "Loose waves."):
        assert part in text


class FakeGenaiClient:
    """Records embed_content calls and answers with deterministic vectors."""

    def __init__(self, dim: int, fail_with: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.dim, self.fail_with = dim, fail_with
        self.models = self

    def embed_content(self, *, model: str, contents: list[str], config: Any) -> Any:
        self.calls.append({"model": model, "contents": contents, "config": config})
        if self.fail_with is not None:
            raise self.fail_with
        values = [[float(len(c)) + i for i in range(self.dim)] for c in contents]
        return SimpleNamespace(embeddings=[SimpleNamespace(values=v) for v in values])


def test_gemini_embedder_batches_requests_and_normalises() -> None:
    """Gemini is called in batches of 100 with the output dimension; vectors come back unit."""
    client = FakeGenaiClient(dim=8)
    embedder = GeminiTextEmbedder("", "gemini-embedding-001", 8, client=client)
    vectors = embedder.embed([f"move {i}" for i in range(150)], query=True)
    assert [len(c["contents"]) for c in client.calls] == [100, 50]
    assert client.calls[0]["config"].output_dimensionality == 8
    assert client.calls[0]["config"].task_type == "RETRIEVAL_QUERY"
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert embedder.space == "gemini:gemini-embedding-001-8"


def test_gemini_rate_limit_is_transient_and_bad_key_is_configuration() -> None:
    """HTTP 429 from Gemini is a TransientError; 403 a ConfigurationError naming the key."""
    limited = FakeGenaiClient(8, errors.ClientError(429, {"error": {"message": "slow down"}}))
    with pytest.raises(TransientError, match="429"):
        GeminiTextEmbedder("", "m", 8, client=limited).embed(["x"])
    denied = FakeGenaiClient(8, errors.ClientError(403, {"error": {"message": "no"}}))
    with pytest.raises(ConfigurationError, match="GEMINI_API_KEY"):
        GeminiTextEmbedder("", "m", 8, client=denied).embed(["x"])


def test_settings_pick_gemini_only_with_a_key() -> None:
    """Without GEMINI_API_KEY the local embedder is used; with one, Gemini (no network yet)."""
    assert isinstance(text_embedder_from_settings(VectorSearchSettings()), LocalTextEmbedder)
    with_key = VectorSearchSettings(GEMINI_API_KEY="k", GEMINI_EMBEDDING_DIM=256)
    embedder = text_embedder_from_settings(with_key)
    assert isinstance(embedder, GeminiTextEmbedder)
    assert embedder.space == "gemini:gemini-embedding-001-256"
