"""Invalid blueprints: each mutation of a valid example is rejected, naming the field path."""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from schemas.blueprint import (
    DOCUMENT_PATH,
    MAX_BLUEPRINT_BYTES,
    MAX_MOVES,
    BlueprintInvalid,
    parse_blueprint,
)
from schemas.errors import InvalidInput

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "blueprint-song.json"
BASE: dict[str, Any] = json.loads(EXAMPLE.read_text())
LAST = len(BASE["moves_used"]) - 1
_TOKEN = re.compile(r"[^.\[\]]+|\[-?\d+\]")

Document = dict[str, Any]


def _walk(document: Document, path: str) -> tuple[Any, str | int]:
    """Return the container holding ``path``'s last part, and that part."""
    parts: list[str | int] = [
        int(token[1:-1]) if token.startswith("[") else token for token in _TOKEN.findall(path)
    ]
    node: Any = document
    for part in parts[:-1]:
        node = node[part]
    return node, parts[-1]


def get(document: Document, path: str) -> Any:
    """The value at a ``moves_used[3].clip_uri`` style path."""
    node, last = _walk(document, path)
    return node[last]


def put(path: str, value: Any) -> Callable[[Document], None]:
    """A mutation setting the value at ``path``."""

    def mutate(document: Document) -> None:
        node, last = _walk(document, path)
        node[last] = value

    return mutate


def shift(path: str, seconds: float) -> Callable[[Document], None]:
    """A mutation adding ``seconds`` to the number at ``path``."""

    def mutate(document: Document) -> None:
        node, last = _walk(document, path)
        node[last] = round(node[last] + seconds, 6)

    return mutate


def drop(path: str) -> Callable[[Document], None]:
    """A mutation removing the field at ``path``."""

    def mutate(document: Document) -> None:
        node, last = _walk(document, path)
        del node[last]

    return mutate


def each(*mutations: Callable[[Document], None]) -> Callable[[Document], None]:
    """A mutation applying several mutations in order."""

    def mutate(document: Document) -> None:
        for mutation in mutations:
            mutation(document)

    return mutate


def copy_from(path: str, source: str) -> Callable[[Document], None]:
    """A mutation copying the value at ``source`` to ``path``."""

    def mutate(document: Document) -> None:
        put(path, copy.deepcopy(get(document, source)))(document)

    return mutate


@dataclass(frozen=True)
class Case:
    """One invalid blueprint: how to break the base, which path is named, and a message hint."""

    id: str
    mutate: Callable[[Document], None]
    path: str
    hint: str


def m(index: int, field: str) -> str:
    """Path of a field of move ``index``."""
    return f"moves_used[{index}].{field}"


URI = m(3, "clip_uri")
CASES = [
    # URIs
    Case("dotdot", put(URI, "../../etc/passwd"), URI, "'..' path segments"),
    Case("dotdot-inside", put(URI, "moves/../../etc/passwd"), URI, "'..' path segments"),
    Case("absolute", put(URI, "/etc/passwd"), URI, "absolute paths"),
    Case("encoded-dots", put(URI, "%2e%2e/%2e%2e/etc/passwd"), URI, "percent-encoded path"),
    Case("double-encoded", put(URI, "%252e%252e/etc/passwd"), URI, "percent-encoded path"),
    Case("encoded-slash", put(URI, "moves/..%2f..%2fetc/passwd"), URI, "percent-encoded path"),
    Case("backslashes", put(URI, "..\\..\\x"), URI, "backslashes"),
    Case("nul", put(URI, "moves/a.mp4\x00.png"), URI, "control character"),
    Case("empty-segment", put(URI, "moves//a.mp4"), URI, "empty path segments"),
    Case("empty-uri", put(URI, ""), URI, "empty"),
    Case("file-no-root", put("song.audio_uri", "file:///etc/passwd"), "song.audio_uri", "root"),
    Case(
        "http-output",
        put("video_output.uri", "http://evil.example/v.mp4"),
        "video_output.uri",
        "'http'",
    ),
    Case("ftp-clip", put(URI, "ftp://evil.example/a.mp4"), URI, "'ftp'"),
    Case("data-clip", put(URI, "data:video/mp4;base64,AAAA"), URI, "'data'"),
    Case("bad-bucket", put(URI, "gs://Not_A_Bucket/a.mp4"), URI, "bucket name"),
    Case("uri-number", put(URI, 42), URI, "valid string"),
    # timeline
    Case("overlap", shift(m(3, "timeline_start_s"), -0.5), m(3, "timeline_start_s"), "overlaps"),
    Case("gap", shift(m(3, "timeline_start_s"), 0.5), m(3, "timeline_start_s"), "gap of 0.5 s"),
    Case(
        "first-not-at-0", put(m(0, "timeline_start_s"), 0.5), m(0, "timeline_start_s"), "first move"
    ),
    Case(
        "timeline-short",
        shift("song.window.end_s", 2.0),
        m(LAST, "timeline_end_s"),
        "window is 33.997 s",
    ),
    Case(
        "timeline-long",
        shift("song.window.end_s", -2.0),
        m(LAST, "timeline_end_s"),
        "window is 29.997 s",
    ),
    Case(
        "cut-off-beat",
        each(shift(m(4, "timeline_start_s"), 0.1), shift(m(3, "timeline_end_s"), 0.1)),
        m(4, "timeline_start_s"),
        "0.1 s off the nearest beat (tolerance 0.033 s)",
    ),
    Case(
        "window-off-beat",
        shift("song.window.start_s", 0.2),
        m(0, "timeline_start_s"),
        "off the nearest beat",
    ),
    Case("clip-too-long", shift(m(4, "clip_out_s"), 0.5), m(4, "clip_out_s"), "clip plays"),
    # numbers
    Case("nan-tempo", put("song.tempo_bpm", math.nan), "song.tempo_bpm", "finite"),
    Case("inf-clip-out", put(m(0, "clip_out_s"), math.inf), m(0, "clip_out_s"), "finite"),
    Case(
        "minus-inf-fade",
        put("video_output.audio_fade_in_s", -math.inf),
        "video_output.audio_fade_in_s",
        "finite",
    ),
    Case(
        "negative-clip-in",
        put(m(1, "clip_in_s"), -1.0),
        m(1, "clip_in_s"),
        "greater than or equal to 0",
    ),
    Case(
        "zero-clip",
        copy_from(m(1, "clip_out_s"), m(1, "clip_in_s")),
        m(1, "clip_out_s"),
        "after clip_in_s",
    ),
    Case(
        "clip-inverted",
        each(put(m(2, "clip_in_s"), 3.0), put(m(2, "clip_out_s"), 1.0)),
        m(2, "clip_out_s"),
        "after clip_in_s",
    ),
    Case(
        "zero-timeline-span",
        copy_from(m(1, "timeline_end_s"), m(1, "timeline_start_s")),
        m(1, "timeline_end_s"),
        "after timeline_start_s",
    ),
    Case("zero-song", put("song.duration_s", 0.0), "song.duration_s", "greater than 0"),
    Case("window-inverted", put("song.window.end_s", 10.0), "song.window.end_s", "after start_s"),
    Case("window-past-song", put("song.window.end_s", 190.0), "song.window.end_s", "past the end"),
    Case(
        "window-negative",
        put("song.window.start_s", -1.0),
        "song.window.start_s",
        "greater than or equal",
    ),
    Case("tempo-too-fast", put("song.tempo_bpm", 1000.0), "song.tempo_bpm", "less than or equal"),
    # transitions and speed
    Case(
        "unknown-transition",
        put(m(1, "transition_in.type"), "spin"),
        m(1, "transition_in.type"),
        "'spin'",
    ),
    Case(
        "transition-too-long",
        put(m(2, "transition_in"), {"type": "crossfade", "duration_s": 1.5}),
        m(2, "transition_in.duration_s"),
        "longer than half",
    ),
    Case(
        "transition-over-max",
        put(m(4, "transition_in"), {"type": "crossfade", "duration_s": 3.0}),
        m(4, "transition_in.duration_s"),
        "less than or equal",
    ),
    Case(
        "first-not-cut",
        put(m(0, "transition_in"), {"type": "fade", "duration_s": 0.25}),
        m(0, "transition_in.type"),
        "first move",
    ),
    Case(
        "cut-with-duration",
        put(m(1, "transition_in.duration_s"), 0.5),
        m(1, "transition_in.duration_s"),
        "0 for a cut",
    ),
    Case(
        "fade-without-duration",
        put(m(3, "transition_in"), {"type": "fade", "duration_s": 0.0}),
        m(3, "transition_in.duration_s"),
        "positive",
    ),
    Case("speed-0.5", put(m(1, "speed_factor"), 0.5), m(1, "speed_factor"), "0.85"),
    Case("speed-2.0", put(m(1, "speed_factor"), 2.0), m(1, "speed_factor"), "1.15"),
    # types and shape
    Case(
        "string-for-number",
        put("song.tempo_bpm", "120"),
        "song.tempo_bpm",
        "valid number (got string)",
    ),
    Case("string-for-int", put("video_output.width", "1280"), "video_output.width", "got string"),
    Case("float-for-int", put(m(0, "counts"), 8.5), m(0, "counts"), "valid integer"),
    Case("bool-for-int", put(m(0, "counts"), True), m(0, "counts"), "valid integer"),
    Case("string-for-bool", put(m(0, "mirror"), "yes"), m(0, "mirror"), "valid boolean"),
    Case("list-for-object", put("video_output.overlays", []), "video_output.overlays", "got array"),
    Case("object-for-list", put("moves_used", {}), "moves_used", "valid list"),
    Case("no-moves", put("moves_used", []), "moves_used", "at least 1"),
    Case("extra-root-field", put("extra", 1), "extra", "unknown field"),
    Case("extra-move-field", put(m(0, "tempo"), 120), m(0, "tempo"), "unknown field"),
    Case("missing-task-id", drop("task_id"), "task_id", "missing"),
    Case("missing-song", drop("song"), "song", "missing"),
    Case("missing-moves", drop("moves_used"), "moves_used", "missing"),
    Case("missing-video-output", drop("video_output"), "video_output", "missing"),
    Case("missing-clip-uri", drop(m(2, "clip_uri")), m(2, "clip_uri"), "missing"),
    Case("missing-reason-text", drop(m(2, "reason.text")), m(2, "reason.text"), "missing"),
    Case("schema-version-2", put("schema_version", 2), "schema_version", "1"),
    Case("naive-created-at", put("created_at", "2024-06-11T14:03:27"), "created_at", "timezone"),
    Case("task-id-traversal", put("task_id", "../etc"), "task_id", "pattern"),
    Case("task-id-space", put("task_id", "my task"), "task_id", "pattern"),
    Case("task-id-too-long", put("task_id", "t" * 65), "task_id", "pattern"),
    Case("task-id-empty", put("task_id", ""), "task_id", "pattern"),
    Case(
        "control-in-title", put("song.title", "Neon\x1bPulse"), "song.title", "control characters"
    ),
    Case(
        "describe-without-text", put("request.path", "describe"), "request.description", "required"
    ),
    # video output
    Case("odd-width", put("video_output.width", 1281), "video_output.width", "even"),
    Case("odd-height", put("video_output.height", 721), "video_output.height", "even"),
    Case("width-too-big", put("video_output.width", 8000), "video_output.width", "3840"),
    Case("fps-too-low", put("video_output.fps", 5), "video_output.fps", "12"),
    Case("fps-too-high", put("video_output.fps", 120), "video_output.fps", "60"),
    Case("codec-vp9", put("video_output.codec", "vp9"), "video_output.codec", "'h264'"),
    # beat grid and sections
    Case(
        "beats-repeat",
        copy_from("song.beats_s[10]", "song.beats_s[9]"),
        "song.beats_s[10]",
        "strictly increasing",
    ),
    Case(
        "beats-after-song",
        put("song.beats_s[-1]", 500.0),
        "song.beats_s[-1]",
        "after the end of the song",
    ),
    Case(
        "downbeat-not-beat", shift("song.downbeats_s[3]", 0.25), "song.downbeats_s[3]", "not a beat"
    ),
    Case(
        "repeat-of-later",
        put(m(0, "section.repeat_of"), 3),
        m(0, "section.repeat_of"),
        "earlier section",
    ),
    Case(
        "sections-backwards",
        put(m(LAST, "section"), {"label": "verse", "index": 0, "repeat_of": None}),
        m(LAST, "section.index"),
        "backwards",
    ),
    Case(
        "repeat-of-unseen",
        put(m(LAST, "section"), {"label": "outro", "index": 9, "repeat_of": 7}),
        m(LAST, "section.repeat_of"),
        "no section 7",
    ),
]


def _problems(document: Any, **options: Any) -> list[tuple[str, str]]:
    with pytest.raises(BlueprintInvalid) as caught:
        parse_blueprint(document, **options)
    return [(problem.path, problem.message) for problem in caught.value.problems]


def _normalise(path: str) -> str:
    # "song.beats_s[-1]" in a case means the last beat; the error names its real index.
    if path == "song.beats_s[-1]":
        return f"song.beats_s[{len(BASE['song']['beats_s']) - 1}]"
    return path


def test_base_example_is_valid() -> None:
    """The base of every mutation is valid, so each rejection comes from its mutation."""
    parse_blueprint(copy.deepcopy(BASE))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_mutation_is_rejected_naming_the_field(case: Case) -> None:
    """The mutated blueprint is rejected and a problem names the mutated field's path."""
    document = copy.deepcopy(BASE)
    case.mutate(document)
    problems = _problems(document)
    expected = _normalise(case.path)
    messages = [message for path, message in problems if path == expected]
    assert messages, f"no problem at {expected}; got {problems}"
    assert any(case.hint in message for message in messages), messages


def test_at_least_forty_mutations() -> None:
    """The invalid-blueprint table keeps at least 40 distinct cases."""
    assert len({case.id for case in CASES}) >= 40


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_json_text_is_rejected(token: str) -> None:
    """NaN/Infinity written in the JSON text are rejected at the field, not parsed as floats."""
    text = EXAMPLE.read_text().replace('"tempo_bpm": 120.0', f'"tempo_bpm": {token}', 1)
    assert token in text
    assert (
        "song.tempo_bpm",
        f"{float(token)} is not a finite number (NaN and Infinity are not JSON)",
    ) in _problems(text)


def test_oversized_document_is_rejected_before_parsing() -> None:
    """A document over MAX_BLUEPRINT_BYTES is rejected as a whole, even if it is not JSON."""
    text = "{" + " " * MAX_BLUEPRINT_BYTES + "garbage"
    [(path, message)] = _problems(text)
    assert path == DOCUMENT_PATH
    assert f"limit of {MAX_BLUEPRINT_BYTES} bytes" in message


def test_oversized_object_is_rejected() -> None:
    """A decoded object whose JSON would exceed the byte limit is rejected too."""
    document = copy.deepcopy(BASE)
    document["song"]["title"] = "x" * MAX_BLUEPRINT_BYTES
    [(path, _message)] = _problems(document)
    assert path == DOCUMENT_PATH


def test_too_many_moves_is_rejected_before_validating_them() -> None:
    """More than MAX_MOVES moves is one problem at moves_used, whatever the moves contain."""
    document = copy.deepcopy(BASE)
    document["moves_used"] = [{}] * (MAX_MOVES + 1)
    assert _problems(document) == [
        ("moves_used", f"{MAX_MOVES + 1} moves exceed the limit of {MAX_MOVES}")
    ]


@pytest.mark.parametrize(
    ("raw", "hint"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid"),
        ("[1, 2]", "expected a JSON object, got array"),
        ("null", "expected a JSON object, got null"),
        ("[" * 100_000 + "]" * 100_000, "nested more than 64 levels deep"),
    ],
)
def test_unreadable_documents_are_one_document_problem(raw: bytes | str, hint: str) -> None:
    """Text that is not a JSON object gives one problem at the document path."""
    [(path, message)] = _problems(raw)
    assert path == DOCUMENT_PATH
    assert hint in message


def test_every_problem_is_reported_not_just_the_first() -> None:
    """Independent field errors in different places are all reported in one error."""
    document = copy.deepcopy(BASE)
    for mutation in (
        put("task_id", "../x"),
        put(m(0, "speed_factor"), 2.0),
        put(m(5, "clip_uri"), "/etc/passwd"),
        put("video_output.width", 1281),
        drop("song.title"),
    ):
        mutation(document)
    paths = {path for path, _message in _problems(document)}
    assert paths == {
        "task_id",
        m(0, "speed_factor"),
        m(5, "clip_uri"),
        "video_output.width",
        "song.title",
    }


def test_every_timeline_problem_is_reported() -> None:
    """Several timeline rule breaks are reported together, each at its own move."""
    document = copy.deepcopy(BASE)
    shift(m(2, "timeline_start_s"), 0.5)(document)
    put(m(6, "speed_factor"), 1.15)(document)
    paths = {path for path, _message in _problems(document)}
    assert {m(2, "timeline_start_s"), m(6, "clip_out_s")} <= paths


def test_error_is_invalid_input_with_one_line_per_problem() -> None:
    """BlueprintInvalid is a permanent InvalidInput whose text has one 'path: message' line each."""
    document = copy.deepcopy(BASE)
    put("task_id", "../x")(document)
    put(m(3, "clip_uri"), "../../etc/passwd")(document)
    with pytest.raises(InvalidInput) as caught:
        parse_blueprint(document)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("task_id: ")
    assert lines[1] == "moves_used[3].clip_uri: '..' path segments are not allowed"


def test_file_uri_outside_the_storage_root_is_rejected(tmp_path: Path) -> None:
    """With a storage root, file:///etc/passwd escapes it."""
    document = copy.deepcopy(BASE)
    put(m(3, "clip_uri"), "file:///etc/passwd")(document)
    assert (m(3, "clip_uri"), "path escapes the storage root") in _problems(
        document, storage_root=tmp_path
    )


def test_symlink_escaping_the_storage_root_is_rejected(tmp_path: Path) -> None:
    """A clip key through a symlink pointing out of the storage root is rejected."""
    root, outside = tmp_path / "storage", tmp_path / "elsewhere"
    (root / "moves").mkdir(parents=True)
    outside.mkdir()
    (root / "moves" / "evil").symlink_to(outside, target_is_directory=True)
    document = copy.deepcopy(BASE)
    put(m(3, "clip_uri"), "moves/evil/passwd")(document)
    assert _problems(document, storage_root=root) == [
        (m(3, "clip_uri"), "path escapes the storage root")
    ]


def test_buckets_outside_the_allowed_set_are_rejected() -> None:
    """allowed_buckets restricts gs:// URIs and names the offending field."""
    document = copy.deepcopy(BASE)
    put(m(1, "clip_uri"), "gs://someone-elses-bucket/a.mp4")(document)
    problems = _problems(document, allowed_buckets=frozenset({"choreo-moves"}))
    assert problems == [
        (m(1, "clip_uri"), "bucket 'someone-elses-bucket' is not allowed (allowed: choreo-moves)")
    ]
