"""Bars of a blueprint as the user writes them: ``1-8,17-24`` (1-based, inclusive, in 4/4 bars).

A revision (``choreography.revision.requested``) names the bars to keep and to redo this way.
Bar 1 is the first bar of the original blueprint's window (its first move's first downbeat);
every bar is four counts. ``parse_bars`` reads the text the CLI and the HTTP API are given,
``format_bars`` writes spans back (merged, sorted) for messages and the blueprint.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from schemas.errors import InvalidInput

# A blueprint holds at most 10,000 moves of at least one count; 4/4 bars of a 15-minute song at
# 300 BPM are 1,125. Far above any real song, small enough that a set of bars stays cheap.
MAX_BAR = 5000
MAX_SPANS = 200
_SPAN = re.compile(r"^(\d+)(?:-(\d+))?$")


class BarSpan(BaseModel):
    """Bars ``first`` to ``last`` of a blueprint, 1-based and inclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first: int = Field(ge=1, le=MAX_BAR)
    last: int = Field(ge=1, le=MAX_BAR)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.last < self.first:
            raise PydanticCustomError(
                "bar_span", "last bar {last} is before first bar {first}", self.model_dump()
            )
        return self

    def bars(self) -> range:
        """The bars of the span."""
        return range(self.first, self.last + 1)

    def text(self) -> str:
        """``7`` or ``1-8``."""
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


class BadBars(InvalidInput):
    """A BARS text that does not read as bar spans; the message quotes the offending part."""


def parse_bars(text: str, *, option: str = "BARS") -> list[BarSpan]:
    """``"1-8,17-24"`` -> spans; ``BadBars`` names ``option`` and the part that is wrong."""
    if not text.strip():
        raise BadBars(f"{option} is empty: give bars like 1-8,17-24")
    spans: list[BarSpan] = []
    for part in text.split(","):
        match = _SPAN.match(part.strip())
        if match is None:
            raise BadBars(
                f"{option}: {part.strip()!r} is not a bar or a range of bars "
                "(write 1-8,17-24: 1-based bar numbers, ranges inclusive)"
            )
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if first < 1:
            raise BadBars(f"{option}: bar 0 does not exist (bars are numbered from 1)")
        if last < first:
            raise BadBars(f"{option}: {part.strip()!r} ends before it starts")
        if last > MAX_BAR:
            raise BadBars(f"{option}: bar {last} is past the largest bar number {MAX_BAR}")
        spans.append(BarSpan(first=first, last=last))
    if len(spans) > MAX_SPANS:
        raise BadBars(f"{option}: {len(spans)} ranges, at most {MAX_SPANS}")
    return spans


def bar_set(spans: Iterable[BarSpan]) -> set[int]:
    """Every bar the spans cover."""
    return {bar for span in spans for bar in span.bars()}


def spans_of(bars: Iterable[int]) -> list[BarSpan]:
    """The fewest spans covering exactly ``bars``, in order."""
    out: list[BarSpan] = []
    for bar in sorted(set(bars)):
        if out and out[-1].last == bar - 1:
            out[-1] = BarSpan(first=out[-1].first, last=bar)
        else:
            out.append(BarSpan(first=bar, last=bar))
    return out


def format_bars(bars: Iterable[int]) -> str:
    """``1-8,17-24`` for a set of bars (merged and sorted); ``""`` for none."""
    return ",".join(span.text() for span in spans_of(bars))
