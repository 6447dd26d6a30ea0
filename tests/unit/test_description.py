"""The local description parser: a table of sentences and the constraints read from them."""

from __future__ import annotations

from typing import Any

import pytest

from choreography.planner.description import (
    DurationOutOfRange,
    merge_constraints,
    parse_description,
    parse_description_locally,
)
from schemas.blueprint import Practice
from schemas.errors import InvalidInput
from schemas.events import Constraints, OutputSpec

# sentence -> expected fields (constraints plus tempo); fields not named must be None.
TABLE: list[tuple[str, dict[str, Any]]] = [
    (
        "energetic hip-hop for beginners, about 2 minutes",
        {"style": "hip-hop", "energy": "high", "difficulty": "beginner", "duration_s": 120.0},
    ),
    ("Chill HipHop, 90 seconds", {"style": "hip-hop", "energy": "low", "duration_s": 90.0}),
    ("hip hop dance, high-energy, pro level", {"style": "hip-hop", "energy": "high",
                                               "difficulty": "advanced"}),
    ("a calm contemporary piece, slow", {"style": "contemporary", "energy": "low",
                                         "tempo": "slow"}),
    ("1.5 min of advanced salsa", {"style": "salsa", "difficulty": "advanced", "duration_s": 90.0}),
    ("a minute and a half of jazz", {"style": "jazz", "duration_s": 90.0}),
    ("mellow house, intermediate, 2:30", {"style": "house", "energy": "low",
                                          "difficulty": "intermediate", "duration_s": 150.0}),
    ("fast pop routine, easy, two minutes", {"style": "pop", "tempo": "fast",
                                             "difficulty": "beginner", "duration_s": 120.0}),
    ("upbeat k-pop, 3 minutes 30 seconds", {"style": "pop", "energy": "high",
                                            "duration_s": 210.0}),
    ("half a minute of something simple", {"difficulty": "beginner", "duration_s": 30.0}),
    ("90s hip-hop, hard", {"style": "hip-hop", "difficulty": "advanced"}),
    ("a jazzy routine that is not too hard", {"style": "jazz"}),
    ("a dance for my friend's birthday", {}),
    ("a 45-second quick latin number", {"style": "salsa", "tempo": "fast", "duration_s": 45.0}),
]  # fmt: skip

FIELDS = ("style", "energy", "difficulty", "duration_s", "tempo")


@pytest.mark.parametrize(("sentence", "expected"), TABLE, ids=[s for s, _ in TABLE])
def test_sentence_to_constraints(sentence: str, expected: dict[str, Any]) -> None:
    """Each sentence yields exactly the expected constraints and tempo hint, source local."""
    parsed = parse_description_locally(sentence)
    got = {**parsed.constraints.model_dump(), "tempo": parsed.tempo}
    assert {name: got[name] for name in FIELDS} == {name: expected.get(name) for name in FIELDS}
    assert parsed.source == "local"


def test_understood_records_the_words() -> None:
    """The words each field was read from are recorded, for the blueprint and the logs."""
    parsed = parse_description_locally("Energetic HIP HOP for beginners, about 2 minutes")
    assert parsed.understood == {
        "style": "hip hop",
        "energy": "energetic",
        "difficulty": "beginners",
        "duration_s": "2 minutes",
    }


def test_explicit_bpm_sets_a_narrow_tempo_range() -> None:
    """'128 bpm' gives a tempo range of +-8 % around 128; a tempo word gives its band."""
    assert parse_description_locally("pop at 128 BPM").tempo_range() == pytest.approx(
        (117.76, 138.24)
    )
    assert parse_description_locally("slow salsa").tempo_range() == (60.0, 102.0)
    assert parse_description_locally("salsa").tempo_range() is None


def test_keywords_are_collected_in_order() -> None:
    """Movement words are kept once each, in order, to search moves with."""
    parsed = parse_description_locally("arm waves and kicks, more waves, sharp footwork")
    assert parsed.keywords == ("arm", "waves", "kicks", "sharp", "footwork")


@pytest.mark.parametrize("sentence", ["a 20 minute marathon", "10 seconds of pop"])
def test_impossible_duration_is_a_clear_error(sentence: str) -> None:
    """A length outside 15-600 s is refused with the number and the allowed range."""
    with pytest.raises(DurationOutOfRange, match="15 to 600 s"):
        parse_description_locally(sentence)


@pytest.mark.parametrize("text", ["", "   "])
def test_blank_description_is_rejected(text: str) -> None:
    """A blank description is invalid input, not an empty set of constraints."""
    with pytest.raises(InvalidInput, match="non-empty"):
        parse_description(text)


def test_without_gemini_the_local_parser_answers() -> None:
    """No Gemini parser given: local, and no fallback reason (nothing failed)."""
    parsed = parse_description("chill salsa")
    assert parsed.source == "local" and parsed.fallback_reason is None


def test_explicit_constraints_win_over_parsed_ones() -> None:
    """Request constraints override the description field by field; the rest stays parsed."""
    parsed = parse_description_locally("energetic hip-hop for beginners, 2 minutes").constraints
    merged = merge_constraints(Constraints(difficulty="advanced", duration_s=60.0), parsed)
    assert merged.difficulty == "advanced" and merged.duration_s == 60.0
    assert merged.style == "hip-hop" and merged.energy == "high"
    assert merge_constraints(None, parsed) == parsed


def test_an_explicit_output_survives_the_merge_as_a_model() -> None:
    """A describe request's ``output`` (size, practice renditions) is still an ``OutputSpec``
    after the merge: the planner reads its fields."""
    parsed = parse_description_locally("chill salsa").constraints
    output = OutputSpec(width=640, height=360, practice=Practice(mirror=True))
    merged = merge_constraints(Constraints(output=output), parsed)
    assert merged.output == output and merged.style == "salsa"
