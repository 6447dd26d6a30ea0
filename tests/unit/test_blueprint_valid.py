"""Valid blueprints: the documented examples pass and survive a JSON round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.blueprint import (
    SCHEMA_VERSION,
    TRANSITION_TYPES,
    Blueprint,
    BlueprintInvalid,
    Problem,
    format_path,
    parse_blueprint,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("blueprint-*.json"))


def test_both_user_paths_have_an_example() -> None:
    """The docs ship one example per user path (song and describe)."""
    paths = {json.loads(file.read_text())["request"]["path"] for file in EXAMPLE_FILES}
    assert paths == {"song", "describe"}


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda file: file.name)
def test_documented_example_is_valid(example: Path) -> None:
    """Each docs example parses into a Blueprint with its moves in order."""
    blueprint = parse_blueprint(example.read_bytes())
    assert blueprint.schema_version == SCHEMA_VERSION
    assert len(blueprint.moves_used) >= 6
    assert any(move.section.repeat_of is not None for move in blueprint.moves_used)
    starts = [move.timeline_start_s for move in blueprint.moves_used]
    assert starts == sorted(starts)


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda file: file.name)
def test_round_trip_through_json_is_identical(example: Path) -> None:
    """model -> JSON -> model gives an equal model and the same JSON again."""
    blueprint = parse_blueprint(example.read_bytes())
    text = blueprint.model_dump_json()
    again = parse_blueprint(text)
    assert again == blueprint
    assert again.model_dump_json() == text
    assert Blueprint.model_validate_json(text) == blueprint


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda file: file.name)
def test_text_bytes_and_object_inputs_agree(example: Path) -> None:
    """parse_blueprint gives the same model for bytes, str and a decoded dict."""
    raw = example.read_bytes()
    from_bytes = parse_blueprint(raw)
    assert parse_blueprint(raw.decode()) == from_bytes
    assert parse_blueprint(json.loads(raw)) == from_bytes


def test_file_uris_inside_the_storage_root_are_valid(tmp_path: Path) -> None:
    """file:// URIs are accepted when they point inside the given storage root."""
    document = json.loads((EXAMPLES / "blueprint-song.json").read_text())
    document["song"]["audio_uri"] = (tmp_path / "songs" / "neon-pulse.mp3").as_uri()
    blueprint = parse_blueprint(document, storage_root=tmp_path)
    assert blueprint.song.audio_uri.startswith("file://")


def test_json_schema_is_exported_with_field_descriptions() -> None:
    """model_json_schema() works, forbids extra fields and documents fields."""
    schema = Blueprint.model_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"task_id", "song", "moves_used", "video_output"}
    move = schema["$defs"]["MoveUsed"]
    assert move["properties"]["speed_factor"]["minimum"] == 0.85
    assert move["properties"]["clip_uri"]["description"]
    transition_types = schema["$defs"]["Transition"]["properties"]["type"]["enum"]
    assert tuple(transition_types) == TRANSITION_TYPES


def test_error_text_is_one_line_per_problem() -> None:
    """str(BlueprintInvalid) is 'path: message' lines, one per problem."""
    error = BlueprintInvalid([Problem("task_id", "bad"), Problem("moves_used[3].clip_uri", "x")])
    assert str(error) == "task_id: bad\nmoves_used[3].clip_uri: x"


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("task_id",), "task_id"),
        (("moves_used", 3, "clip_uri"), "moves_used[3].clip_uri"),
        (("song", "beats_s", 0), "song.beats_s[0]"),
        (("moves_used", 0, "reason", "filters", "style"), "moves_used[0].reason.filters.style"),
    ],
)
def test_pydantic_locations_format_as_field_paths(loc: tuple[int | str, ...], path: str) -> None:
    """format_path turns pydantic loc tuples into dotted paths with [index]."""
    assert format_path(loc) == path
