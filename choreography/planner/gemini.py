"""Gemini (google-genai) with structured output: description parsing, and the shared call.

:class:`GeminiStructuredCall` makes one ``generateContent`` call asking for JSON that matches a
pydantic model. Rate limits (429), server errors (5xx) and timeouts are retried with exponential
backoff (the ``backoff`` package); a refusal (blocked prompt, ``SAFETY`` finish) or an answer
that is not the schema is not retried, since asking again gives the same answer. Every failure
raises. :class:`GeminiDescriptionParser` asks it for :class:`GeminiDescription`;
:func:`choreography.planner.description.parse_description` turns a failure into a logged fallback
to the local parser (``gemini_refiner`` uses the same call for sequence refinement). Clients are
built by the composition root, once.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, TypeVar

import backoff
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from choreography.moves.model import STYLES
from choreography.planner.description import (
    DurationOutOfRange,
    ParsedDescription,
    checked_duration,
)
from schemas.errors import PermanentError, TransientError
from schemas.events import Constraints
from schemas.settings import GeminiSettings

log = logging.getLogger(__name__)

# Finish reasons that mean the model would not (or could not) answer this prompt.
REFUSAL_FINISH_REASONS = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE", "OTHER"}
)
SYSTEM_INSTRUCTION = (
    "You read a short request for a dance choreography video and extract what it asks for. "
    f"style: one of {', '.join(STYLES)}, or null when none is named or implied. "
    "energy: low, medium or high (chill/calm is low, energetic/hype is high), or null. "
    "difficulty: beginner, intermediate or advanced, or null. "
    "duration_s: the requested length in seconds, or null when no length is given. "
    "tempo: slow, medium or fast when the music's speed is described, else null; "
    "tempo_bpm only when a number of beats per minute is given. "
    "keywords: up to 8 short words about the movement or mood worth searching moves for. "
    "Never invent values the request does not support."
)

StyleName = Literal["hip-hop", "pop", "salsa", "contemporary", "house", "jazz"]


class GeminiDescription(BaseModel):
    """The structured answer Gemini is asked for (its response schema)."""

    model_config = ConfigDict(extra="ignore")

    style: StyleName | None = None
    energy: Literal["low", "medium", "high"] | None = None
    difficulty: Literal["beginner", "intermediate", "advanced"] | None = None
    duration_s: float | None = Field(default=None, ge=0)
    tempo: Literal["slow", "medium", "fast"] | None = None
    # Gemini's schema dialect has minimum/maximum but no exclusiveMinimum: no gt= here.
    tempo_bpm: float | None = Field(default=None, ge=30, le=300)
    keywords: list[str] = Field(default_factory=list, max_length=16)


class GeminiRefused(PermanentError):
    """Gemini blocked the prompt or stopped for safety; asking again gives the same answer."""


class GeminiBadAnswer(PermanentError):
    """Gemini answered, but not with JSON matching the schema."""


class GeminiUnavailable(TransientError):
    """Rate limited, server errors or timeouts, still failing after the retries."""


Answer = TypeVar("Answer", bound=BaseModel)


class GeminiStructuredCall:
    """``generateContent`` for a pydantic answer, with retries; ``attempts`` counts HTTP calls."""

    def __init__(
        self,
        client: Any,
        *,
        model: str,
        max_tries: int = 4,
        max_time_s: float = 60.0,
        backoff_factor_s: float = 0.5,
    ) -> None:
        self._client, self.model = client, model
        self.attempts = 0
        self._call = backoff.on_exception(
            backoff.expo,
            _RetryableCall,
            max_tries=max_tries,
            max_time=max_time_s,
            factor=backoff_factor_s,
            on_backoff=_log_retry,
        )(self._call_once)

    def ask(self, contents: str, *, instruction: str, schema: type[Answer]) -> Answer:
        """Gemini's answer to ``contents`` as ``schema``; raises on any failure (module doc)."""
        try:
            response = self._call(contents, instruction, schema)
        except _RetryableCall as error:
            raise GeminiUnavailable(
                f"Gemini {self.model} still failing after {self.attempts} attempts: {error}"
            ) from error.__cause__
        return _answer(response, schema)

    def _call_once(self, contents: str, instruction: str, schema: type[BaseModel]) -> Any:
        from google.genai import errors, types  # noqa: PLC0415 - heavy, only used with a key

        self.attempts += 1
        config = types.GenerateContentConfig(
            system_instruction=instruction,
            response_mime_type="application/json",
            response_schema=schema,
            temperature=0.0,
        )
        try:
            return self._client.models.generate_content(
                model=self.model, contents=contents, config=config
            )
        except errors.APIError as error:
            if error.code == 429 or error.code >= 500:
                raise _RetryableCall(
                    f"HTTP {error.code} {error.status}: {error.message}"
                ) from error
            raise GeminiRefused(
                f"Gemini {self.model} rejected the request with HTTP {error.code}: {error.message}"
            ) from error
        except Exception as error:
            if _is_transport_error(error):
                raise _RetryableCall(f"{type(error).__name__}: {error}") from error
            raise


class GeminiDescriptionParser:
    """Parse descriptions with one Gemini model; ``attempts`` counts HTTP calls made."""

    def __init__(self, call: GeminiStructuredCall) -> None:
        self._gemini = call

    @property
    def model(self) -> str:
        """The Gemini model asked."""
        return self._gemini.model

    @property
    def attempts(self) -> int:
        """HTTP calls made so far (retries included)."""
        return self._gemini.attempts

    def parse(self, text: str) -> ParsedDescription:
        """Ask Gemini for the constraints in ``text``; raises on any failure (see module doc)."""
        answer = self._gemini.ask(text, instruction=SYSTEM_INSTRUCTION, schema=GeminiDescription)
        try:
            duration = checked_duration(answer.duration_s)
        except DurationOutOfRange as error:
            # Could be a misreading; the local parser decides whether the text really says so.
            raise GeminiBadAnswer(f"Gemini read an impossible duration: {error}") from error
        return ParsedDescription(
            constraints=Constraints(
                style=answer.style,
                energy=answer.energy,
                difficulty=answer.difficulty,
                duration_s=duration,
            ),
            tempo=answer.tempo,
            tempo_bpm=answer.tempo_bpm,
            understood={
                name: str(value)
                for name, value in answer.model_dump(exclude={"keywords"}).items()
                if value is not None
            },
            keywords=tuple(dict.fromkeys(w.strip().lower() for w in answer.keywords if w.strip())),
            source="gemini",
        )


class _RetryableCall(Exception):
    """A failure worth another attempt (inside the retry loop only)."""


def _is_transport_error(error: Exception) -> bool:
    """A timeout or connection failure, from whichever httpx flavour google-genai uses."""
    # google-genai runs on httpx or its fork httpx2 (separate classes), so match by name.
    for cls in type(error).__mro__:
        if cls.__module__.split(".")[0] in ("httpx", "httpx2") and cls.__name__ in (
            "TransportError",
            "TimeoutException",
        ):
            return True
    return isinstance(error, TimeoutError | ConnectionError)


def _log_retry(details: Any) -> None:
    log.warning(
        "Gemini call failed (%s), retry %d in %.2f s",
        details.get("exception"),
        details["tries"],
        details.get("wait", 0.0),
    )


def _answer(response: Any, schema: type[Answer]) -> Answer:
    """The validated answer, or why there is none (refusal or malformed JSON)."""
    feedback = getattr(response, "prompt_feedback", None)
    block = getattr(feedback, "block_reason", None)
    if block:
        raise GeminiRefused(f"Gemini blocked the prompt: {_name(block)}")
    candidates = getattr(response, "candidates", None) or []
    if not candidates:
        raise GeminiRefused("Gemini returned no candidates")
    finish = _name(getattr(candidates[0], "finish_reason", None))
    if finish in REFUSAL_FINISH_REASONS:
        raise GeminiRefused(f"Gemini stopped with finish reason {finish}")
    parsed = getattr(response, "parsed", None)
    if isinstance(parsed, schema):
        return parsed
    text = response.text
    if not text:
        raise GeminiBadAnswer(f"Gemini returned no text (finish reason {finish})")
    try:
        return schema.model_validate_json(text)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}"
            for e in error.errors()[:3]
        )
        raise GeminiBadAnswer(f"Gemini answer is not the expected JSON: {problems}") from error


def _name(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


def gemini_call_from_settings(settings: GeminiSettings) -> GeminiStructuredCall | None:
    """A structured call with its own client when ``GEMINI_API_KEY`` is set, else None."""
    key = settings.api_key.get_secret_value()
    if not key:
        return None
    from google import genai  # noqa: PLC0415 - heavy, only used with a key
    from google.genai import types  # noqa: PLC0415

    options = types.HttpOptions(
        base_url=settings.base_url or None, timeout=int(settings.timeout_s * 1000)
    )
    client = genai.Client(api_key=key, http_options=options)
    return GeminiStructuredCall(
        client,
        model=settings.model,
        max_tries=settings.max_tries,
        max_time_s=settings.retry_max_time_s,
        backoff_factor_s=settings.backoff_factor_s,
    )


def gemini_parser_from_settings(settings: GeminiSettings) -> GeminiDescriptionParser | None:
    """A parser with its own client when ``GEMINI_API_KEY`` is set; None (logged) otherwise."""
    call = gemini_call_from_settings(settings)
    if call is None:
        log.info("GEMINI_API_KEY is not set: descriptions are parsed by the local parser")
        return None
    return GeminiDescriptionParser(call)
