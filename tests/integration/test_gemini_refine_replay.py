"""Sequence refinement through the real google-genai client against recorded responses."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from choreography.planner.gemini_refiner import GeminiSequenceRefiner, gemini_refiner_from_settings
from schemas.blueprint import Blueprint
from schemas.settings import GeminiSettings
from tests.fixtures.gemini import ReplayServer
from tests.unit.test_refinement import plan

# refine_ok.json swaps slot 5 (the bridge's second move; move-003 in the local plan since the pose
# weight is 20) for move-007.
SLOT, LOCAL_MOVE, GEMINI_MOVE = 5, "move-003", "move-007"


def refiner_for(replay: ReplayServer, *responses: str) -> GeminiSequenceRefiner:
    """A refiner built like production (from settings, GEMINI_REFINE on), on the replay server."""
    replay.queue.extend(responses)
    refiner = gemini_refiner_from_settings(replay.settings(refine=True))
    assert refiner is not None
    return refiner


def move_ids(blueprint: Blueprint) -> list[str]:
    return [m.move_id for m in blueprint.moves_used]


def test_an_accepted_refinement_changes_the_slot_and_says_why(replay: ReplayServer) -> None:
    """Gemini's valid choice replaces the local move in its slot, with Gemini's reason."""
    local = plan()
    assert local.moves_used[SLOT].move_id == LOCAL_MOVE
    refiner = refiner_for(replay, "refine_ok")
    refined = plan(refiner)
    expected = move_ids(local)
    expected[SLOT] = GEMINI_MOVE
    assert move_ids(refined) == expected
    reason = refined.moves_used[SLOT].reason.text
    assert "Gemini refinement chose this over" in reason and "varies the bridge" in reason
    assert refiner.attempts == 1


def test_the_request_carries_the_plan_summary_and_the_answer_schema(replay: ReplayServer) -> None:
    """One generateContent call: the slot summary as JSON text, the refinement response schema."""
    plan(refiner_for(replay, "refine_ok"))
    path, body, _ = replay.requests[0]
    assert path.endswith("/models/gemini-2.5-flash:generateContent")
    summary = json.loads(body["contents"][0]["parts"][0]["text"])
    assert summary["slots"][SLOT]["local_move"] == LOCAL_MOVE
    assert GEMINI_MOVE in {c["id"] for c in summary["slots"][SLOT]["candidates"]}
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = json.dumps(config.get("responseSchema") or config.get("responseJsonSchema"))
    assert "choices" in schema and "move_id" in schema


def test_a_non_candidate_choice_is_rejected_and_the_local_plan_kept(replay: ReplayServer) -> None:
    """An id that is not a candidate for its slot rejects the whole answer, valid parts too."""
    refined = plan(refiner_for(replay, "refine_not_candidate"))
    assert move_ids(refined) == move_ids(plan())
    reason = refined.moves_used[0].reason.text
    assert "Gemini refinement rejected" in reason
    assert "'move-000' is not a candidate for slot 0" in reason


def test_malformed_json_keeps_the_local_plan_without_retry(replay: ReplayServer) -> None:
    """Truncated JSON is a bad answer: one call, the local plan, the error in the reasons."""
    refiner = refiner_for(replay, "refine_malformed")
    refined = plan(refiner)
    assert move_ids(refined) == move_ids(plan())
    assert "Gemini refinement failed (GeminiBadAnswer" in refined.moves_used[0].reason.text
    assert refiner.attempts == 1


@pytest.mark.parametrize("recording", ["safety_finish", "prompt_blocked"])
def test_a_refusal_keeps_the_local_plan_without_retry(replay: ReplayServer, recording: str) -> None:
    """A SAFETY finish or a blocked prompt: one call, the local plan, the refusal named."""
    refiner = refiner_for(replay, recording)
    refined = plan(refiner)
    assert move_ids(refined) == move_ids(plan())
    reason = refined.moves_used[0].reason.text
    assert "GeminiRefused" in reason and "SAFETY" in reason
    assert refiner.attempts == 1 and len(replay.requests) == 1


def test_unavailable_is_retried_then_the_answer_used(replay: ReplayServer) -> None:
    """A 503 is retried with backoff; the second answer is applied and both calls counted."""
    refiner = refiner_for(replay, "unavailable_503", "refine_ok")
    refined = plan(refiner)
    assert refined.moves_used[SLOT].move_id == GEMINI_MOVE
    assert refiner.attempts == 2 and len(replay.requests) == 2


def test_refinement_is_off_by_default_and_needs_a_key(replay: ReplayServer) -> None:
    """No refiner unless GEMINI_REFINE is on and a key is set."""
    assert gemini_refiner_from_settings(replay.settings()) is None
    assert gemini_refiner_from_settings(GeminiSettings(api_key=SecretStr(""), refine=True)) is None
