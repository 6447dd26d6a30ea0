"""The blueprint, schema version 1: the contract between planning and rendering.

The blueprint consumer writes one per task; the video job validates it before it fetches
anything. Field rules (types, ranges, URIs) are checked by pydantic; the timeline rules that
relate fields to each other (:func:`timeline_problems`) run once every field is valid. All
times are in seconds. ``timeline_*`` times are relative to the start of ``song.window``.
``docs/BLUEPRINT_SCHEMA.md`` documents every field and rule; :func:`parse_blueprint` is the
entry point that reports every problem with its field path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas.blueprint_rules import (
    TIMELINE_TOLERANCE_S,
    format_seconds,
    song_grid_problems,
    timeline_problems,
)
from schemas.errors import InvalidInput
from schemas.storage_uri import UnsafeStorageUri, check_storage_uri
from schemas.strict_json import JsonRejected, check_tree, loads_strict

__all__ = [
    "FPS_MAX",
    "FPS_MIN",
    "HEIGHT_MAX",
    "HEIGHT_MIN",
    "MAX_AUDIO_FADE_S",
    "MAX_BEATS",
    "MAX_BLUEPRINT_BYTES",
    "MAX_MOVES",
    "MAX_SONG_DURATION_S",
    "MAX_TRANSITION_S",
    "SCHEMA_VERSION",
    "SPEED_FACTOR_MAX",
    "SPEED_FACTOR_MIN",
    "TIMELINE_TOLERANCE_S",
    "TRANSITION_TYPES",
    "VIDEO_CODECS",
    "WIDTH_MAX",
    "WIDTH_MIN",
    "AppliedConstraints",
    "Blueprint",
    "BlueprintInvalid",
    "MoveUsed",
    "Overlays",
    "Problem",
    "Reason",
    "Request",
    "Section",
    "Song",
    "SongAnalysis",
    "SongWindow",
    "SyncTolerances",
    "Transition",
    "VideoOutput",
    "format_path",
    "parse_blueprint",
    "problems_from",
    "validation_context",
]

SCHEMA_VERSION = 1
MAX_BLUEPRINT_BYTES = 1_000_000
"""Checked before parsing; also keeps the blueprint small enough for an environment variable."""
MAX_MOVES = 512
MAX_BEATS = 20_000
"""A one-hour song at 300 BPM has 18 000 beats."""
MAX_SONG_DURATION_S = 3600.0
SPEED_FACTOR_MIN = 0.85
SPEED_FACTOR_MAX = 1.15
MAX_TRANSITION_S = 2.0
MAX_AUDIO_FADE_S = 10.0
WIDTH_MIN, WIDTH_MAX = 64, 3840
HEIGHT_MIN, HEIGHT_MAX = 64, 2160
FPS_MIN, FPS_MAX = 12, 60
SAFE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"

TransitionType = Literal[
    "cut", "crossfade", "fade", "dissolve", "wipeleft", "wiperight", "slideleft", "slideright"
]
TRANSITION_TYPES: tuple[str, ...] = get_args(TransitionType)
"""``cut`` is a hard cut; ``crossfade`` is FFmpeg xfade ``fade``; the rest are xfade names."""
VideoCodec = Literal["h264"]
VIDEO_CODECS: tuple[str, ...] = get_args(VideoCodec)

RULE_ERROR_TYPE = "blueprint_rule"
"""pydantic error type whose ``ctx["problems"]`` holds (relative path, message) pairs."""


def validation_context(
    storage_root: Path | None = None, allowed_buckets: frozenset[str] | None = None
) -> dict[str, Any]:
    """The pydantic validation context that the URI rules read."""
    return {"storage_root": storage_root, "allowed_buckets": allowed_buckets}


def _safe_uri(value: str, info: ValidationInfo) -> str:
    context = info.context if isinstance(info.context, Mapping) else {}
    root = context.get("storage_root")
    buckets = context.get("allowed_buckets")
    try:
        check_storage_uri(
            value,
            storage_root=root if isinstance(root, Path) else None,
            allowed_buckets=buckets if isinstance(buckets, frozenset) else None,
        )
    except UnsafeStorageUri as exc:
        raise PydanticCustomError("unsafe_uri", "{reason}", {"reason": str(exc)}) from None
    return value


def _printable(value: str) -> str:
    # Display text reaches FFmpeg overlays and logs; control characters have no business there.
    if any((ord(char) < 0x20 and char not in "\n\t") or ord(char) == 0x7F for char in value):
        raise PydanticCustomError("control_character", "control characters are not allowed")
    return value


StorageUri = Annotated[str, AfterValidator(_safe_uri)]
SafeId = Annotated[str, Field(pattern=SAFE_ID_PATTERN)]
Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_printable)]
LongText = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_printable)]
Seconds = Annotated[float, Field(ge=0, le=MAX_SONG_DURATION_S)]
PositiveSeconds = Annotated[float, Field(gt=0, le=MAX_SONG_DURATION_S)]
Bpm = Annotated[float, Field(ge=30, le=300)]


def _broken(problems: list[tuple[str, str]]) -> PydanticCustomError:
    """Bundle rule problems (paths relative to the model) into one pydantic error."""
    details = "; ".join(f"{path}: {message}" for path, message in problems)
    return PydanticCustomError(
        RULE_ERROR_TYPE, "{details}", {"details": details, "problems": problems}
    )


class _Contract(BaseModel):
    # strict: "120" is not a number and 1.0 is not an int; floats accept JSON integers.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        frozen=True,
        use_attribute_docstrings=True,
    )


class AppliedConstraints(_Contract):
    """The constraints the planner actually applied (given, parsed, or defaulted)."""

    difficulty: Literal["beginner", "intermediate", "advanced"]
    """Move difficulty filter."""
    energy: Literal["low", "medium", "high"]
    """Energy level filter."""
    style: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
    """Dance style slug, e.g. ``hiphop``."""
    duration_s: Annotated[float, Field(gt=0, le=MAX_SONG_DURATION_S)]
    """Requested video length in seconds (the window is the nearest phrase-aligned fit)."""
    allow_repeats: bool = False
    """The request welcomed repeated moves (fidelity to its levels before variety)."""


class Substitution(_Contract):
    """Moves placed at another level than the one asked for, and why."""

    field: Literal["difficulty", "energy"]
    """Which request field the moves do not match."""
    requested: Literal["beginner", "intermediate", "advanced", "low", "medium", "high"]
    """The level asked for."""
    given: Literal["beginner", "intermediate", "advanced", "low", "medium", "high"]
    """The level of the moves placed instead."""
    placements: Annotated[int, Field(ge=1, le=MAX_MOVES)]
    """How many of ``moves_used`` have the ``given`` level."""
    move_ids: Annotated[list[SafeId], Field(min_length=1, max_length=MAX_MOVES)]
    """The distinct moves placed at the ``given`` level, in timeline order."""
    reason: LongText
    """Why: what the candidate moves offer at the requested level and what the plan needed."""

    def line(self) -> str:
        """For people: ``energy: asked medium, given high in 7 placements (ids): reason``."""
        return (
            f"{self.field}: asked {self.requested}, given {self.given} in {self.placements} "
            f"placement{'s' if self.placements != 1 else ''} ({', '.join(self.move_ids)}): "
            f"{self.reason}"
        )


class Request(_Contract):
    """What was asked for."""

    path: Literal["song", "describe"]
    """``song``: a catalog song was selected (Path 1); ``describe``: a description (Path 2)."""
    description: LongText | None = None
    """The user's description; required for ``describe``, absent for ``song``."""
    constraints: AppliedConstraints
    """The effective constraints."""
    substitutions: Annotated[list[Substitution], Field(max_length=8)] = Field(default_factory=list)
    """Where the moves differ from the requested difficulty or energy (empty: they do not)."""

    @model_validator(mode="after")
    def _description_matches_path(self) -> Request:
        if self.path == "describe" and self.description is None:
            raise _broken([("description", "required when path is 'describe'")])
        if self.path == "song" and self.description is not None:
            raise _broken([("description", "must be null when path is 'song'")])
        return self


class SongWindow(_Contract):
    """The part of the song the video uses, in song seconds."""

    start_s: Seconds
    """Start of the window (song seconds), on a beat since the first cut is there."""
    end_s: PositiveSeconds
    """End of the window (song seconds), at most ``song.duration_s``."""

    @model_validator(mode="after")
    def _positive_length(self) -> SongWindow:
        if self.end_s <= self.start_s:
            raise _broken([("end_s", f"must be after start_s ({format_seconds(self.start_s)} s)")])
        return self

    @property
    def length_s(self) -> float:
        """The window's length in seconds, which is the video's length."""
        return self.end_s - self.start_s


class SongAnalysis(_Contract):
    """Summary of the music analysis, for diagnostics (renderers ignore it)."""

    tempo_confidence: Annotated[float, Field(ge=0, le=1)] | None = None
    """Confidence of ``tempo_bpm`` in [0, 1]."""
    tempo_alternative_bpm: Bpm | None = None
    """The octave alternative (half or double tempo) the analyser also considered."""
    octave_ambiguous: bool | None = None
    """True when the music supports counting at the alternative (half or double) as well."""
    tempo_level: LongText | None = None
    """Which level of the pulse was counted as the beat, and why."""
    analyser: Text | None = None
    """Name and version of the analyser, e.g. ``librosa 0.10.2``."""


class Song(_Contract):
    """The song and its beat grid."""

    song_id: SafeId | None = None
    """Catalog id; null for an uploaded song outside the catalog."""
    title: Text
    """Song title (shown in logs and overlays)."""
    artist: Text | None = None
    """Artist, when known."""
    audio_uri: StorageUri
    """Where the audio is (see the URI rules)."""
    choice_reason: LongText | None = None
    """Why the planner picked this song (Path 2 when the user named none); null otherwise."""
    duration_s: PositiveSeconds
    """Length of the whole song."""
    tempo_bpm: Bpm
    """Estimated tempo in beats per minute."""
    time_signature: Annotated[int, Field(ge=1, le=12)] = 4
    """Beats per bar."""
    beats_s: Annotated[list[Seconds], Field(min_length=2, max_length=MAX_BEATS)]
    """Beat times in song seconds, strictly increasing, within the song."""
    downbeats_s: Annotated[list[Seconds], Field(max_length=MAX_BEATS)]
    """Bar starts in song seconds, strictly increasing, each on a beat (within 1 ms)."""
    window: SongWindow
    """The part of the song used."""
    analysis: SongAnalysis | None = None
    """Optional analysis summary."""

    @model_validator(mode="after")
    def _grid_is_consistent(self) -> Song:
        problems = song_grid_problems(self)
        if problems:
            raise _broken(problems)
        return self


class Transition(_Contract):
    """How a move is entered. Its midpoint sits on the cut, so the timeline length is unchanged."""

    type: TransitionType
    """One of ``TRANSITION_TYPES``."""
    duration_s: Annotated[float, Field(ge=0, le=MAX_TRANSITION_S)]
    """0 for ``cut``; otherwise > 0 and at most half of each adjacent move's span."""

    @model_validator(mode="after")
    def _duration_matches_type(self) -> Transition:
        if self.type == "cut" and self.duration_s != 0:
            raise _broken([("duration_s", "must be 0 for a cut")])
        if self.type != "cut" and self.duration_s == 0:
            raise _broken([("duration_s", f"must be positive for {self.type!r}")])
        return self


class Section(_Contract):
    """The song section a move belongs to."""

    label: Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_printable)]
    """E.g. ``intro``, ``verse``, ``chorus``."""
    index: Annotated[int, Field(ge=0)]
    """0-based position of the section in the window; non-decreasing along ``moves_used``."""
    repeat_of: Annotated[int, Field(ge=0)] | None = None
    """Index of an earlier section whose choreography this one repeats (a chorus)."""

    @model_validator(mode="after")
    def _repeats_an_earlier_section(self) -> Section:
        if self.repeat_of is not None and self.repeat_of >= self.index:
            raise _broken([("repeat_of", f"must be an earlier section than {self.index}")])
        return self


class Reason(_Contract):
    """Why the planner chose this move."""

    text: LongText
    """A sentence for humans."""
    search_score: float | None = None
    """Similarity score from the move search (cosine, higher is closer)."""
    filters: Annotated[dict[str, Text], Field(max_length=16)] | None = None
    """The search filters that admitted the move, e.g. ``{"style": "hiphop"}``."""
    transition_cost: Annotated[float, Field(ge=0)] | None = None
    """Pose distance from the previous move's end pose (lower is smoother)."""


class MoveUsed(_Contract):
    """One move placed on the timeline."""

    move_id: SafeId
    """Move library id."""
    name: Text
    """Move name (shown by the ``move_names`` overlay)."""
    clip_uri: StorageUri
    """Where the move's video clip is (see the URI rules)."""
    clip_in_s: Seconds
    """Start of the used part of the clip (clip seconds)."""
    clip_out_s: PositiveSeconds
    """End of the used part of the clip (clip seconds), after ``clip_in_s``."""
    timeline_start_s: Seconds
    """Where the move starts on the video timeline (window-relative)."""
    timeline_end_s: PositiveSeconds
    """Where the move ends on the video timeline (window-relative)."""
    counts: Annotated[int, Field(ge=1, le=64)]
    """Dance counts (beats) the move lasts."""
    speed_factor: Annotated[float, Field(ge=SPEED_FACTOR_MIN, le=SPEED_FACTOR_MAX)]
    """Playback speed; (clip_out_s - clip_in_s) / speed_factor is the timeline span."""
    mirror: bool
    """Flip the clip horizontally."""
    transition_in: Transition
    """How this move is entered; the first move's is a ``cut``."""
    section: Section
    """The song section the move belongs to."""
    reason: Reason
    """Why it was chosen."""

    @model_validator(mode="after")
    def _spans_are_positive(self) -> MoveUsed:
        problems = []
        if self.clip_out_s <= self.clip_in_s:
            problems.append(
                ("clip_out_s", f"must be after clip_in_s ({format_seconds(self.clip_in_s)} s)")
            )
        if self.timeline_end_s <= self.timeline_start_s:
            start = format_seconds(self.timeline_start_s)
            problems.append(("timeline_end_s", f"must be after timeline_start_s ({start} s)"))
        if problems:
            raise _broken(problems)
        return self

    @property
    def span_s(self) -> float:
        """The move's length on the timeline."""
        return self.timeline_end_s - self.timeline_start_s


class Overlays(_Contract):
    """What is drawn over the video."""

    count_numbers: bool
    """Show the dance count (1-8) on each beat."""
    move_names: bool
    """Show each move's name while it plays."""


PRACTICE_SPEEDS: tuple[float, ...] = (0.75, 0.5)
"""The slow renditions a blueprint may ask for (pitch kept)."""
PracticeSpeed = Annotated[float, Field(json_schema_extra={"enum": list(PRACTICE_SPEEDS)})]


class Practice(_Contract):
    """Practice renditions rendered beside the video (docs/PRACTICE.md); all off by default."""

    mirror: bool = False
    """A mirrored video (``<video>-mirror.mp4``); the overlays are not mirrored."""
    slow: Annotated[list[PracticeSpeed], Field(max_length=2)] = Field(default_factory=list)
    """Slowed copies (``<video>-slow075.mp4``, ``-slow050``), audio slowed with its pitch kept."""
    loops: bool = False
    """One clip per section and per 8-count with the counts overlaid (``<video>-loop-*.mp4``)."""
    page: bool = False
    """A static practice page (``<video>.html``) with loop, speed and mirror controls."""

    @field_validator("slow")
    @classmethod
    def _known_distinct_speeds(cls, value: list[float]) -> list[float]:
        unknown = [speed for speed in value if speed not in PRACTICE_SPEEDS]
        if unknown:
            raise PydanticCustomError(
                "unknown_speed", "{speed} is not one of 0.75, 0.5", {"speed": unknown[0]}
            )
        if len(set(value)) != len(value):
            raise PydanticCustomError("repeated_speed", "each speed at most once")
        return value

    @property
    def wanted(self) -> bool:
        """True when any rendition is asked for."""
        return self.mirror or bool(self.slow) or self.loops or self.page


class SyncTolerances(_Contract):
    """What the sync report measured on the rendered file must meet (docs/SYNC_REPORT.md); a
    render that misses any fails its task with the figures."""

    cut_error_frames: Annotated[float, Field(ge=0, le=10)] = 1.5
    """Largest distance of a seen hard cut from the nearest beat, and from its planned frame, in
    frames (plus 2 ms for the millisecond beat grid). 1.5 by default: a blueprint may put a cut
    up to one frame from its beat, and the render rounds it to a frame (half a frame more)."""
    audio_offset_ms: Annotated[float, Field(ge=0, le=1000)] = 40.0
    """Largest offset of the rendered audio against the song's window, either way."""
    min_audio_correlation: Annotated[float, Field(ge=0, le=1)] = 0.5
    """Smallest correlation of the two onset envelopes at that offset (less: the audio is not
    the song's window at all)."""
    duration_error_frames: Annotated[float, Field(ge=0, le=10)] = 1.0
    """Largest distance of the file's and the picture's length from the timeline, in frames
    (plus 1 ms)."""


class VideoOutput(_Contract):
    """The video to render."""

    uri: StorageUri
    """Where to upload the result (see the URI rules)."""
    width: Annotated[int, Field(ge=WIDTH_MIN, le=WIDTH_MAX)]
    """Pixels, even (H.264 with 4:2:0 chroma needs even sizes)."""
    height: Annotated[int, Field(ge=HEIGHT_MIN, le=HEIGHT_MAX)]
    """Pixels, even."""
    fps: Annotated[int, Field(ge=FPS_MIN, le=FPS_MAX)]
    """Frames per second; one frame (1/fps) is the tolerance of the frame-based rules."""
    codec: VideoCodec
    """One of ``VIDEO_CODECS``."""
    audio_fade_in_s: Annotated[float, Field(ge=0, le=MAX_AUDIO_FADE_S)]
    """Audio fade-in at the start of the window."""
    audio_fade_out_s: Annotated[float, Field(ge=0, le=MAX_AUDIO_FADE_S)]
    """Audio fade-out at the end of the window."""
    overlays: Overlays
    """Overlay switches."""
    practice: Practice | None = None
    """Practice renditions to render beside the video; null or absent: none."""
    sync: SyncTolerances | None = None
    """Tolerances of the sync report; null or absent: the defaults."""

    @field_validator("width", "height")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise PydanticCustomError("odd_size", "must be even (got {value})", {"value": value})
        return value


class Blueprint(_Contract):
    """A complete, rendering-ready choreography for one task."""

    schema_version: Literal[1]
    """Always 1 for this schema."""
    task_id: SafeId
    """The task; used in object names, hence the safe pattern."""
    created_at: AwareDatetime = Field(strict=False)
    """When the blueprint was planned (ISO 8601 with a time zone)."""
    request: Request
    """What was asked for."""
    song: Song
    """The song, its beat grid and the window used."""
    moves_used: Annotated[list[MoveUsed], Field(min_length=1, max_length=MAX_MOVES)]
    """The moves in timeline order, back to back from 0 to the window's length."""
    video_output: VideoOutput
    """The video to render."""

    @model_validator(mode="after")
    def _timeline_is_consistent(self) -> Blueprint:
        problems = timeline_problems(self)
        if problems:
            raise _broken(problems)
        return self


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a blueprint: where (``moves_used[3].clip_uri``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


DOCUMENT_PATH = "$"
"""The path of problems with the document as a whole (size, JSON syntax, top-level type)."""


class BlueprintInvalid(InvalidInput):
    """A blueprint that breaks its contract; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


def parse_blueprint(
    raw: bytes | str | Mapping[str, Any],
    *,
    storage_root: Path | None = None,
    allowed_buckets: frozenset[str] | None = None,
) -> Blueprint:
    """Validate JSON text or a decoded object into a ``Blueprint``; raise ``BlueprintInvalid``."""
    data = _load(raw)
    try:
        return Blueprint.model_validate(
            data, context=validation_context(storage_root, allowed_buckets)
        )
    except ValidationError as exc:
        raise BlueprintInvalid(problems_from(exc)) from exc


def problems_from(error: ValidationError) -> list[Problem]:
    """Turn a pydantic error into problems with ``a.b[2].c`` paths, expanding rule bundles."""
    problems = []
    for item in error.errors(include_url=False):
        base = format_path(item["loc"])
        context = item.get("ctx") or {}
        if item["type"] == RULE_ERROR_TYPE:
            problems += [
                Problem(_join(base, relative), message) for relative, message in context["problems"]
            ]
        else:
            problems.append(Problem(base or DOCUMENT_PATH, _message(item)))
    return problems


def format_path(loc: tuple[int | str, ...]) -> str:
    """Format a pydantic ``loc`` as ``moves_used[3].clip_uri``."""
    path = ""
    for part in loc:
        path = _join(path, f"[{part}]" if isinstance(part, int) else str(part))
    return path


def _join(base: str, relative: str) -> str:
    if not base or relative.startswith("["):
        return base + relative
    return f"{base}.{relative}" if relative else base


_JSON_TYPES = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


# Constraint errors whose input is worth echoing: a short scalar says what was wrong with it.
_SHOW_INPUT = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "literal_error",
        "string_pattern_mismatch",
        "finite_number",
    }
)


def _message(item: Any) -> str:
    kind = item["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return f"unknown field (not in blueprint schema version {SCHEMA_VERSION})"
    message = str(item["msg"])
    value = item.get("input")
    if kind.endswith("_type"):
        message += f" (got {_JSON_TYPES.get(type(value), type(value).__name__)})"
    elif kind in _SHOW_INPUT and isinstance(value, int | float | str) and len(str(value)) <= 80:
        message += f" (got {value!r})"
    return message


def _load(raw: bytes | str | Mapping[str, Any]) -> Any:
    """Check size, decode JSON (:mod:`schemas.strict_json` limits) and count moves first."""
    try:
        if isinstance(raw, bytes | str):
            size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "replace"))
        elif isinstance(raw, Mapping):
            check_tree(raw)
            size = len(json.dumps(raw, default=str).encode("utf-8", "replace"))
        else:
            raise _document_problem(f"expected JSON text or an object, got {type(raw).__name__}")
        if size > MAX_BLUEPRINT_BYTES:
            raise _document_problem(
                f"document is {size} bytes, over the limit of {MAX_BLUEPRINT_BYTES} bytes"
            )
        data: Any = loads_strict(raw) if isinstance(raw, bytes | str) else raw
    except JsonRejected as exc:
        if exc.path:
            raise BlueprintInvalid([Problem(exc.path, exc.problem)]) from None
        raise _document_problem(f"not valid JSON: {exc.problem}") from None
    if not isinstance(data, Mapping):
        got = _JSON_TYPES.get(type(data), type(data).__name__)
        raise _document_problem(f"expected a JSON object, got {got}")
    moves = data.get("moves_used")
    if isinstance(moves, list) and len(moves) > MAX_MOVES:
        raise BlueprintInvalid(
            [Problem("moves_used", f"{len(moves)} moves exceed the limit of {MAX_MOVES}")]
        )
    return data


def _document_problem(message: str) -> BlueprintInvalid:
    return BlueprintInvalid([Problem(DOCUMENT_PATH, message)])
