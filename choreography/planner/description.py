"""Turn a dance description into constraints: Gemini when configured, else a local word parser.

``parse_description`` always answers: when Gemini is not configured, fails, refuses or returns
something malformed, the local parser takes over and ``fallback_reason`` says why. The local
parser knows the styles of the move library, energy, difficulty, duration and tempo words; it
never touches the network, so the describe path works offline with the same output shape.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.errors import InvalidInput
from schemas.events import MAX_REQUEST_DURATION_S, MIN_REQUEST_DURATION_S, Constraints

if TYPE_CHECKING:
    from choreography.planner.gemini import GeminiDescriptionParser

log = logging.getLogger(__name__)

TempoHint = Literal["slow", "medium", "fast"]
# BPM ranges a tempo word admits; they overlap so a song near a border fits both words.
TEMPO_RANGES: dict[str, tuple[float, float]] = {
    "slow": (60.0, 102.0),
    "medium": (92.0, 128.0),
    "fast": (116.0, 200.0),
}


class ParsedDescription(BaseModel):
    """What a description asked for, which words said so, and who understood it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    constraints: Constraints
    tempo: TempoHint | None = None
    tempo_bpm: float | None = Field(default=None, gt=0, le=300)
    understood: dict[str, str] = Field(default_factory=dict)
    """Field name -> the words (local) or value (Gemini) it was read from."""
    keywords: tuple[str, ...] = ()
    """Words worth searching moves for (style, moods, body parts), in order of appearance."""
    source: Literal["gemini", "local"]
    fallback_reason: str | None = None
    """Why Gemini was not used, when it was configured (or ``not configured``)."""

    def tempo_range(self) -> tuple[float, float] | None:
        """The BPM range the tempo hint admits (an explicit BPM wins, +-8 %)."""
        if self.tempo_bpm is not None:
            return (self.tempo_bpm * 0.92, self.tempo_bpm * 1.08)
        return TEMPO_RANGES[self.tempo] if self.tempo else None


# Longer alternatives first: the regex takes the first that matches at a position.
_STYLE_WORDS: dict[str, str] = {
    r"hip[\s-]?hop|hiphop|breaking|krump|popping|locking": "hip-hop",
    r"k-?pop|pop": "pop",
    r"salsa|latin|bachata|cumbia": "salsa",
    r"contemporary|lyrical|modern": "contemporary",
    r"house": "house",
    r"jazz|jazzy|broadway": "jazz",
}
_ENERGY_WORDS: dict[str, str] = {
    r"high[\s-]energy|energetic|upbeat|intense|hype|explosive|powerful|lively|fiery|party": "high",
    r"medium[\s-]energy|moderate energy|groovy|steady": "medium",
    r"low[\s-]energy|chill|chilled|calm|mellow|relaxed|gentle|soft|smooth|laid[\s-]back": "low",
}
_DIFFICULTY_WORDS: dict[str, str] = {
    r"beginners?|easy|simple|basic|novice|first[\s-]timers?|kids": "beginner",
    r"intermediate|moderate(?! energy)|medium[\s-]difficulty": "intermediate",
    r"advanced|hard|difficult|challenging|pro|professional|expert": "advanced",
}
_TEMPO_WORDS: dict[str, str] = {
    r"fast|quick|rapid|speedy|uptempo|up-tempo": "fast",
    r"slow|slower|downtempo|ballad": "slow",
    r"mid[\s-]?tempo|medium tempo": "medium",
}
_KEYWORDS = re.compile(
    r"\b(arms?|legs?|footwork|spins?|turns?|jumps?|kicks?|waves?|bounces?|grooves?|claps?|"
    r"punch(?:es)?|lunges?|reach(?:es|ing)?|steps?|partner|floor|isolations?|"
    r"freestyle|sharp|flowing|fluid|playful|dramatic|emotional|happy|sad|romantic)\b"
)
_NUMBER_WORDS = {
    "a": 1.0, "an": 1.0, "one": 1.0, "two": 2.0, "three": 3.0, "four": 4.0, "five": 5.0,
    "six": 6.0, "seven": 7.0, "eight": 8.0, "nine": 9.0, "ten": 10.0, "a couple of": 2.0,
    "a few": 3.0, "half a": 0.5,
}  # fmt: skip
_NUMBER = (
    r"(\d+(?:\.\d+)?|a couple of|a few|half a|an?|one|two|three|four|five|six|seven|eight|nine|ten)"
)
_AND_A_HALF = r"(\s+and\s+a\s+half)?"
_MINUTES = re.compile(rf"\b{_NUMBER}{_AND_A_HALF}[\s-]*(?:minutes?|mins?)\b{_AND_A_HALF}")
# A bare "s" needs a space: "90s hip-hop" is a decade, "90 s" a length.
_SECONDS = re.compile(r"\b(\d+(?:\.\d+)?)(?:[\s-]*(?:seconds?|secs?)|\s+s)\b")
# "not too hard", "isn't energetic": a negated word says what is not wanted, so it is skipped.
_NEGATION = re.compile(
    r"(?:\bnot|\bno|n't|\bnever|\bwithout)(?:\s+(?:too|very|so|that|overly))?\s+$"
)
_CLOCK = re.compile(r"\b(\d{1,2}):([0-5]\d)\b")
_BPM = re.compile(r"\b(\d{2,3}(?:\.\d+)?)\s*bpm\b")


def parse_description(
    text: str, *, gemini: GeminiDescriptionParser | None = None
) -> ParsedDescription:
    """Parse with Gemini when given one, falling back to the local parser (reason recorded)."""
    _check_text(text)
    if gemini is None:
        return parse_description_locally(text, fallback_reason=None)
    try:
        return gemini.parse(text)
    except DurationOutOfRange:
        # The description itself is at fault (e.g. a 20-minute request): no parser can help.
        raise
    except Exception as error:  # any Gemini failure falls back to the local parser, logged
        reason = f"{type(error).__name__}: {error}"
    log.warning("Gemini description parsing failed, using the local parser: %s", reason)
    return parse_description_locally(text, fallback_reason=reason)


def parse_description_locally(
    text: str, *, fallback_reason: str | None = None
) -> ParsedDescription:
    """The offline parser: style, energy, difficulty, duration and tempo words."""
    _check_text(text)
    lowered = " ".join(text.lower().split())
    understood: dict[str, str] = {}
    style = _first_match(lowered, _STYLE_WORDS, "style", understood)
    energy = _first_match(lowered, _ENERGY_WORDS, "energy", understood)
    difficulty = _first_match(lowered, _DIFFICULTY_WORDS, "difficulty", understood)
    tempo = _first_match(lowered, _TEMPO_WORDS, "tempo", understood)
    duration = _duration_s(lowered, understood)
    bpm_match = _BPM.search(lowered)
    if bpm_match:
        understood["tempo_bpm"] = bpm_match.group(0)
    keywords = tuple(dict.fromkeys(m.group(1) for m in _KEYWORDS.finditer(lowered)))
    return ParsedDescription(
        constraints=Constraints(
            style=style,
            energy=energy,
            difficulty=difficulty,
            duration_s=checked_duration(duration),
        ),
        tempo=tempo,
        tempo_bpm=float(bpm_match.group(1)) if bpm_match else None,
        understood=understood,
        keywords=keywords,
        source="local",
        fallback_reason=fallback_reason,
    )


class DurationOutOfRange(InvalidInput):
    """The description asks for a length choreo cannot make; no parser can fix that."""


def checked_duration(duration_s: float | None) -> float | None:
    """``duration_s`` if it is a length a request may ask for, else ``DurationOutOfRange``."""
    if duration_s is None:
        return None
    if not MIN_REQUEST_DURATION_S <= duration_s <= MAX_REQUEST_DURATION_S:
        raise DurationOutOfRange(
            f"description asks for {duration_s:g} s of dance; a video may last "
            f"{MIN_REQUEST_DURATION_S:g} to {MAX_REQUEST_DURATION_S:g} s"
        )
    return round(duration_s, 3)


def merge_constraints(explicit: Constraints | None, parsed: Constraints) -> Constraints:
    """Explicit request constraints win field by field over the parsed ones (validated again,
    so ``output`` stays an ``OutputSpec``: ``model_copy(update=...)`` would leave a dict)."""
    if explicit is None:
        return parsed
    given = explicit.model_dump(exclude_none=True)
    return Constraints.model_validate({**parsed.model_dump(exclude_none=True), **given})


def _check_text(text: str) -> None:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("description must be a non-empty text")


def _first_match(
    lowered: str, table: dict[str, str], name: str, understood: dict[str, str]
) -> str | None:
    """The value of the earliest table entry matching as whole words; its words are recorded."""
    best: tuple[int, str, str] | None = None
    for pattern, value in table.items():
        for match in re.finditer(rf"\b(?:{pattern})\b", lowered):
            if _NEGATION.search(lowered[: match.start()]):
                continue
            if best is None or match.start() < best[0]:
                best = (match.start(), value, match.group(0))
            break
    if best is None:
        return None
    understood[name] = best[2]
    return best[1]


def _duration_s(lowered: str, understood: dict[str, str]) -> float | None:
    """Seconds from '2 minutes', '1.5 min', '90 seconds', 'a minute and a half', '2:30'."""
    readers: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], float]], ...] = (
        (_CLOCK, lambda m: int(m.group(1)) * 60 + int(m.group(2))),
        (_MINUTES, _minutes_match),
        (_SECONDS, lambda m: float(m.group(1))),
    )
    for pattern, read in readers:
        match = pattern.search(lowered)
        if match:
            seconds = read(match)
            # "2 minutes 30 seconds": a seconds part right after the minutes adds to them.
            if pattern is _MINUTES:
                rest = lowered[match.end() :]
                tail = re.match(r"\s*(?:and\s+)?(\d+)\s*(?:seconds?|secs?|s)\b", rest)
                if tail:
                    seconds += float(tail.group(1))
                    understood["duration_s"] = match.group(0) + tail.group(0)
                    return seconds
            understood["duration_s"] = match.group(0).strip()
            return seconds
    return None


def _minutes_match(match: re.Match[str]) -> float:
    number = match.group(1)
    minutes = _NUMBER_WORDS[number] if number in _NUMBER_WORDS else float(number)
    if match.group(2) or match.group(3):
        minutes += 0.5
    return minutes * 60.0
