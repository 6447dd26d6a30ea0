"""Payloads of choreo's five CloudEvent types, and the registry from ``type`` to model and topic.

The payload is the CloudEvent ``data``; envelope attributes (id, source, time, traceparent) live
on :class:`schemas.event_envelope.ChoreoEvent`. Every model forbids unknown fields and non-finite
numbers, so a typo or a ``NaN`` is rejected with the field's name instead of being carried along.
The type names and topic names come from :mod:`schemas.topology`, the one source of truth.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from schemas.bar_spans import MAX_SPANS, BarSpan, bar_set, format_bars
from schemas.blueprint import Practice
from schemas.errors import InvalidInput
from schemas.storage_uri import UnsafeStorageUri, parse_storage_uri
from schemas.text import UnsafeText, check_text
from schemas.topology import (
    BLUEPRINT_READY,
    BLUEPRINT_READY_V1,
    CHOREOGRAPHY_REQUESTED_V1,
    CHOREOGRAPHY_REQUESTS,
    REVISION_REQUESTED_V1,
    TASK_FAILED_V1,
    VIDEO_COMPLETED_V1,
    VIDEO_DONE,
)

__all__ = [
    "BLUEPRINT_READY_V1",
    "CHOREOGRAPHY_REQUESTED_V1",
    "EVENT_SPECS",
    "PAYLOAD_BY_TYPE",
    "REVISION_REQUESTED_V1",
    "SOURCE_BLUEPRINT_CONSUMER",
    "SOURCE_DISPATCHER",
    "SOURCE_JOB",
    "SOURCE_PRODUCER",
    "TASK_FAILED_V1",
    "TOPIC_BY_TYPE",
    "VIDEO_COMPLETED_V1",
    "BlueprintReady",
    "ChoreographyRequested",
    "ClientInfo",
    "Constraints",
    "EventPayload",
    "EventSpec",
    "OutputSpec",
    "RevisionOverrides",
    "RevisionRequested",
    "SongRef",
    "SyncSummary",
    "TaskFailed",
    "VideoCompleted",
    "spec_for_payload",
    "spec_for_type",
]

SOURCE_PRODUCER = "//choreo/producer"
SOURCE_BLUEPRINT_CONSUMER = "//choreo/blueprint-consumer"
SOURCE_DISPATCHER = "//choreo/dispatcher"
SOURCE_JOB = "//choreo/job"

MAX_DESCRIPTION_CHARS = 2000
MIN_REQUEST_DURATION_S, MAX_REQUEST_DURATION_S = 15.0, 600.0
# A rendered video may run a little past the requested window (whole 8-counts, fades).
MAX_VIDEO_DURATION_S = 900.0

TaskId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
SongId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$", max_length=64)]


def _line(value: str) -> str:
    try:
        return check_text(value)
    except UnsafeText as exc:
        raise PydanticCustomError("unsafe_text", str(exc)) from None


def _lines(value: str) -> str:
    try:
        return check_text(value, multiline=True)
    except UnsafeText as exc:
        raise PydanticCustomError("unsafe_text", str(exc)) from None


# Text without control characters (tab, newline and carriage return allowed in ``Lines``).
Line = Annotated[str, AfterValidator(_line)]
Lines = Annotated[str, AfterValidator(_lines)]
NonBlankText = Annotated[str, Field(min_length=1, pattern=r"\S"), AfterValidator(_lines)]


# gs://..., file://... or a relative storage key, checked lexically by schemas.storage_uri (no
# traversal, percent-encoding, ~ or drive prefixes, control characters). Where a URI is fetched
# or written, the allowed roots and buckets are checked as well.
def _safe_uri(value: str) -> str:
    try:
        parse_storage_uri(value)
    except UnsafeStorageUri as exc:
        raise PydanticCustomError("unsafe_uri", str(exc)) from None
    return value


StorageUri = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1024,
        pattern=r"^(?:(?:gs|file)://[^\s\x00-\x1f\x7f]+|[^\s\x00-\x1f\x7f:/][^\s\x00-\x1f\x7f:]*)$",
    ),
    AfterValidator(_safe_uri),
]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SongRef(_Payload):
    """A song from the catalogue (``song_id``) or an audio file (``audio_uri``): exactly one."""

    song_id: SongId | None = None
    audio_uri: StorageUri | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.song_id is None) == (self.audio_uri is None):
            raise PydanticCustomError("song_ref", "exactly one of song_id and audio_uri")
        return self


class OutputSpec(_Payload):
    """Video frame size and rate (even sizes because H.264 4:2:0 needs them) and the practice
    renditions to render beside the video; every field optional (unset: 1280x720 at 30 fps, no
    renditions), width and height given together."""

    width: int | None = Field(None, ge=144, le=4096, multiple_of=2)
    height: int | None = Field(None, ge=144, le=4096, multiple_of=2)
    fps: int | None = Field(None, ge=12, le=60)
    practice: Practice | None = None
    """The blueprint's ``video_output.practice`` (docs/PRACTICE.md), same fields and rules."""

    @model_validator(mode="after")
    def _size_together(self) -> Self:
        if (self.width is None) != (self.height is None):
            raise PydanticCustomError("size_pair", "width and height are given together")
        return self


class Constraints(_Payload):
    """What the dancer asked for; every field optional, unknown fields rejected."""

    difficulty: Literal["beginner", "intermediate", "advanced"] | None = None
    energy: Literal["low", "medium", "high"] | None = None
    style: Slug | None = None
    duration_s: float | None = Field(
        default=None, ge=MIN_REQUEST_DURATION_S, le=MAX_REQUEST_DURATION_S
    )
    output: OutputSpec | None = None
    allow_repeats: bool | None = None
    """Repeats welcome: the plan keeps to the requested difficulty and energy whenever two
    moves there fit, instead of letting in the nearest levels to avoid repeating a move."""


class ClientInfo(_Payload):
    """Who sent the request, for support and metrics; never used for decisions."""

    name: Annotated[Line, Field(min_length=1, max_length=64)]
    version: Annotated[Line, Field(max_length=32)] | None = None
    request_id: Annotated[Line, Field(max_length=128)] | None = None


class ChoreographyRequested(_Payload):
    """A request for a dance video: path ``song`` (a song, constraints) or ``describe`` (text)."""

    task_id: TaskId
    path: Literal["song", "describe"]
    song: SongRef | None = None
    description: Annotated[NonBlankText, Field(max_length=MAX_DESCRIPTION_CHARS)] | None = None
    constraints: Constraints | None = None
    requested_at: AwareDatetime
    client: ClientInfo | None = None

    @model_validator(mode="after")
    def _path_needs(self) -> Self:
        if self.path == "song" and self.song is None:
            raise PydanticCustomError("path_song", "path 'song' needs song")
        if self.path == "describe" and self.description is None:
            raise PydanticCustomError("path_describe", "path 'describe' needs description")
        return self


class RevisionOverrides(_Payload):
    """What a revision changes in the original's constraints; unset fields keep the original's.

    No duration or output size: the kept bars stay where they are, in the same video frame.
    """

    difficulty: Literal["beginner", "intermediate", "advanced"] | None = None
    energy: Literal["low", "medium", "high"] | None = None
    style: Slug | None = None
    allow_repeats: bool | None = None


class RevisionRequested(_Payload):
    """A new task from an existing one: ``keep`` bars' moves exactly, re-plan the ``redo`` bars.

    Bars are 1-based 4/4 bars of the parent's blueprint window (``schemas.bar_spans``). Bars in
    neither list are kept unless a redone move covers them too (docs/REVISIONS.md).
    """

    task_id: TaskId
    parent_task_id: TaskId
    keep: Annotated[list[BarSpan], Field(max_length=MAX_SPANS)] = Field(default_factory=list)
    redo: Annotated[list[BarSpan], Field(min_length=1, max_length=MAX_SPANS)]
    constraints: RevisionOverrides | None = None
    requested_at: AwareDatetime
    client: ClientInfo | None = None

    @model_validator(mode="after")
    def _disjoint(self) -> Self:
        if self.task_id == self.parent_task_id:
            raise PydanticCustomError("revision_parent", "a revision needs a new task_id")
        both = bar_set(self.keep) & bar_set(self.redo)
        if both:
            raise PydanticCustomError(
                "revision_bars",
                "bars {bars} are in both keep and redo",
                {"bars": format_bars(both)},
            )
        return self


class BlueprintReady(_Payload):
    """The blueprint for a task is stored; ``audio_uri`` is the resolved audio it was planned on."""

    task_id: TaskId
    schema_version: Annotated[str, Field(pattern=r"^[0-9]+(?:\.[0-9]+){0,2}$")]
    song_id: SongId | None = None
    audio_uri: StorageUri
    duration_s: float = Field(gt=0, le=MAX_VIDEO_DURATION_S)
    moves_count: int = Field(ge=1, le=10_000)
    blueprint_uri: StorageUri | None = None


RenditionKind = Literal["mirror", "slow", "loop", "page"]


class Rendition(_Payload):
    """A practice rendition uploaded beside the video (docs/PRACTICE.md)."""

    kind: RenditionKind
    """``mirror``, ``slow`` (see ``speed``), ``loop`` (see ``label``) or the practice ``page``."""
    uri: StorageUri
    """Where it is."""
    speed: float | None = Field(default=None, gt=0, le=1)
    """Playback speed of a ``slow`` rendition (0.75, 0.5)."""
    label: Annotated[NonBlankText, Field(max_length=80)] | None = None
    """What a ``loop`` covers, e.g. ``section 2 (chorus)`` or ``8-count 5``."""


class SyncSummary(_Payload):
    """The sync report's figures in brief (docs/SYNC_REPORT.md); the whole report is at
    ``report_uri``. Measured on the rendered file; a completed video met its tolerances."""

    report_uri: StorageUri
    """The report (JSON) beside the video: ``<video>-sync.json``."""
    passed: bool
    cuts_planned: int = Field(ge=0, le=10_000)
    """Hard cuts in the blueprint (moves entered by a transition are not timed)."""
    cuts_measured: int = Field(ge=0, le=10_000)
    """Hard cuts seen in the picture (a cut between near-identical frames is not)."""
    cut_error_max_ms: float | None = None
    """Largest distance of a seen cut from the nearest beat; null when none was seen."""
    cut_error_median_ms: float | None = None
    audio_offset_ms: float | None = None
    """How late the audio is against the song (negative: early); null when the song's window
    has no onsets to align."""
    audio_correlation: float | None = Field(default=None, ge=-1, le=1)
    """Correlation of the rendered and the song's onset envelopes at that offset."""
    duration_s: float = Field(ge=0, le=MAX_VIDEO_DURATION_S + 60)
    """The rendered file's length (a little past the timeline is measured here, not refused)."""
    duration_error_ms: float = Field(ge=0)
    """Its distance (or the picture's, if larger) from the timeline."""


class VideoCompleted(_Payload):
    """The video for a task is uploaded."""

    task_id: TaskId
    video_uri: StorageUri
    duration_s: float = Field(gt=0, le=MAX_VIDEO_DURATION_S)
    width: int = Field(ge=1, le=8192)
    height: int = Field(ge=1, le=8192)
    fps: float = Field(gt=0, le=240)
    size_bytes: int = Field(ge=1)
    completed_at: AwareDatetime
    renditions: Annotated[list[Rendition], Field(max_length=600)] = Field(default_factory=list)
    """Practice renditions uploaded beside the video (empty when none were asked for)."""
    sync: SyncSummary | None = None
    """The sync report in brief (absent from jobs older than the report)."""

    def completion_detail(self) -> dict[str, object]:
        """``{"renditions": [...], "sync": {...}}`` for the completion's ``task_history`` row,
        which is where ``choreo status`` reads them (they have no column); each key only when
        there is something to say."""
        detail: dict[str, object] = {}
        if self.renditions:
            listed = [item.model_dump(mode="json", exclude_none=True) for item in self.renditions]
            detail["renditions"] = listed
        if self.sync is not None:
            detail["sync"] = self.sync.model_dump(mode="json")
        return detail


class TaskFailed(_Payload):
    """A task stopped for good at ``stage``; ``reason`` is for humans, ``error_code`` for code."""

    task_id: TaskId
    stage: Literal["request", "analysis", "planning", "dispatch", "render"]
    reason: Annotated[NonBlankText, Field(max_length=2000)]
    error_code: Slug
    failed_at: AwareDatetime


EventPayload = (
    ChoreographyRequested | RevisionRequested | BlueprintReady | VideoCompleted | TaskFailed
)


@dataclass(frozen=True)
class EventSpec:
    """One CloudEvent type: its payload model and the topic it is published on."""

    type: str
    payload: builtins.type[EventPayload]
    topic: str


EVENT_SPECS: dict[str, EventSpec] = {
    spec.type: spec
    for spec in (
        EventSpec(CHOREOGRAPHY_REQUESTED_V1, ChoreographyRequested, CHOREOGRAPHY_REQUESTS),
        EventSpec(REVISION_REQUESTED_V1, RevisionRequested, CHOREOGRAPHY_REQUESTS),
        EventSpec(BLUEPRINT_READY_V1, BlueprintReady, BLUEPRINT_READY),
        EventSpec(VIDEO_COMPLETED_V1, VideoCompleted, VIDEO_DONE),
        EventSpec(TASK_FAILED_V1, TaskFailed, VIDEO_DONE),
    )
}
PAYLOAD_BY_TYPE: dict[str, type[EventPayload]] = {t: s.payload for t, s in EVENT_SPECS.items()}
TOPIC_BY_TYPE: dict[str, str] = {t: s.topic for t, s in EVENT_SPECS.items()}
_SPEC_BY_PAYLOAD: dict[type[EventPayload], EventSpec] = {s.payload: s for s in EVENT_SPECS.values()}


def spec_for_type(event_type: str) -> EventSpec:
    """The spec of a CloudEvent type; ``InvalidInput`` for a type choreo does not know."""
    spec = EVENT_SPECS.get(event_type)
    if spec is None:
        raise InvalidInput(f"unknown event type {event_type}")
    return spec


def spec_for_payload(payload: EventPayload) -> EventSpec:
    """The spec whose payload model ``payload`` is an instance of."""
    return _SPEC_BY_PAYLOAD[type(payload)]
