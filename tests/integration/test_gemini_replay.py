"""The real google-genai client against a local server replaying recorded Gemini REST responses."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import SecretStr

from choreography.planner.description import parse_description
from choreography.planner.gemini import (
    GeminiBadAnswer,
    GeminiDescriptionParser,
    GeminiRefused,
    GeminiUnavailable,
    gemini_parser_from_settings,
)
from schemas.settings import GeminiSettings
from tests.fixtures.gemini import ReplayServer

DESCRIPTION = "energetic hip-hop for beginners, about 2 minutes"


def parser_for(
    replay: ReplayServer, *responses: str, max_tries: int = 4
) -> GeminiDescriptionParser:
    """A parser built like production (from settings), on the replay server, with fast backoff."""
    replay.queue.extend(responses)
    settings = replay.settings(max_tries=max_tries)
    parser = gemini_parser_from_settings(settings)
    assert parser is not None
    return parser


def test_structured_answer_becomes_constraints(replay: ReplayServer) -> None:
    """A good structured answer is read into constraints with source gemini."""
    parsed = parse_description(DESCRIPTION, gemini=parser_for(replay, "structured_ok"))
    assert parsed.source == "gemini" and parsed.fallback_reason is None
    assert parsed.constraints.style == "hip-hop"
    assert parsed.constraints.energy == "high"
    assert parsed.constraints.difficulty == "beginner"
    assert parsed.constraints.duration_s == 120.0
    assert parsed.tempo == "fast" and parsed.keywords == ("bounce", "arms")


def test_request_uses_the_rest_shape_with_the_schema(replay: ReplayServer) -> None:
    """The client posts to {model}:generateContent with the key, the text and a JSON schema."""
    parser_for(replay, "structured_ok").parse(DESCRIPTION)
    path, body, headers = replay.requests[0]
    # google-genai 1.x posts to v1beta, 3.x to v1: the same REST resource either way.
    assert re.fullmatch(r"/v1(beta)?/models/gemini-2\.5-flash:generateContent", path)
    assert {k.lower(): v for k, v in headers.items()}["x-goog-api-key"] == "test-key"
    assert body["contents"][0]["parts"][0]["text"] == DESCRIPTION
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = json.dumps(config.get("responseSchema") or config.get("responseJsonSchema"))
    assert "difficulty" in schema and "hip-hop" in schema


def test_malformed_json_falls_back_to_local(replay: ReplayServer) -> None:
    """Truncated JSON text is not retried; the local parser answers and the reason is kept."""
    gemini = parser_for(replay, "malformed_json")
    with pytest.raises(GeminiBadAnswer, match="not the expected JSON"):
        gemini.parse(DESCRIPTION)
    replay.queue.append("malformed_json")
    parsed = parse_description(DESCRIPTION, gemini=gemini)
    assert parsed.source == "local" and "not the expected JSON" in (parsed.fallback_reason or "")
    assert parsed.constraints.style == "hip-hop" and parsed.constraints.duration_s == 120.0
    assert gemini.attempts == 2


def test_values_outside_the_schema_are_rejected(replay: ReplayServer) -> None:
    """Valid JSON with a style outside the library's styles is a bad answer, not a constraint."""
    with pytest.raises(GeminiBadAnswer, match="style"):
        parser_for(replay, "wrong_enum").parse("slow tango")


@pytest.mark.parametrize("recording", ["safety_finish", "prompt_blocked"])
def test_refusal_falls_back_without_retry(replay: ReplayServer, recording: str) -> None:
    """A SAFETY finish or a blocked prompt is a refusal: one call, then the local parser."""
    gemini = parser_for(replay, recording)
    parsed = parse_description(DESCRIPTION, gemini=gemini)
    assert parsed.source == "local" and "SAFETY" in (parsed.fallback_reason or "")
    assert gemini.attempts == 1 and len(replay.requests) == 1


def test_rate_limit_is_retried_then_succeeds(replay: ReplayServer) -> None:
    """A 429 is retried with backoff and the second answer is used; both calls are counted."""
    gemini = parser_for(replay, "rate_limited_429", "structured_ok")
    parsed = parse_description(DESCRIPTION, gemini=gemini)
    assert parsed.source == "gemini" and parsed.constraints.energy == "high"
    assert gemini.attempts == 2 and len(replay.requests) == 2


def test_server_error_storm_gives_up_and_falls_back(replay: ReplayServer) -> None:
    """Only 500s: the parser stops after max_tries and the local parser answers."""
    gemini = parser_for(replay, *["internal_500"] * 5, max_tries=3)
    with pytest.raises(GeminiUnavailable, match="after 3 attempts"):
        gemini.parse(DESCRIPTION)
    assert len(replay.requests) == 3
    parsed = parse_description("chill salsa, 90 seconds", gemini=gemini)
    assert parsed.source == "local" and "GeminiUnavailable" in (parsed.fallback_reason or "")
    assert parsed.constraints.style == "salsa" and parsed.constraints.energy == "low"


def test_client_error_is_not_retried(replay: ReplayServer) -> None:
    """A 400 (invalid key) is not retried: retrying cannot fix a bad request."""
    gemini = parser_for(replay, "invalid_key_400")
    with pytest.raises(GeminiRefused, match="HTTP 400"):
        gemini.parse(DESCRIPTION)
    assert gemini.attempts == 1


def test_unreachable_server_is_retried_then_unavailable() -> None:
    """A refused connection counts as transient: retried, then GeminiUnavailable."""
    server = ReplayServer()
    url = server.url
    server.close()
    settings = GeminiSettings(
        api_key=SecretStr("k"), base_url=url, max_tries=2, backoff_factor_s=0.01, timeout_s=2.0
    )
    gemini = gemini_parser_from_settings(settings)
    assert gemini is not None
    with pytest.raises(GeminiUnavailable):
        gemini.parse(DESCRIPTION)
    assert gemini.attempts == 2


def test_no_key_means_no_gemini() -> None:
    """Without GEMINI_API_KEY no client is built, and parsing is local."""
    assert gemini_parser_from_settings(GeminiSettings(api_key=SecretStr(""))) is None
