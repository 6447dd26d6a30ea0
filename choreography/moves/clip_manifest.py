"""The optional manifest of ``choreo moves import-video``: what the user says about each clip.

CSV with a header row, or JSON (a list of objects, or ``{"clips": [...]}``). Each row names its
clip by ``clip`` (a file name, matched to the clips imported by name, or by stem) and may give
``name``, ``style``, ``difficulty``, ``energy``, ``bpm`` and ``counts``; an empty cell is not
given. Values are checked here, so a bad row fails the command before any extraction.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Final

from choreography.moves.model import DIFFICULTIES, ENERGIES, STYLES
from choreography.moves.video_import import ClipValues
from schemas.errors import InvalidInput

FIELDS: Final = ("clip", "name", "style", "difficulty", "energy", "bpm", "counts")


def read_clip_manifest(path: Path) -> dict[str, ClipValues]:
    """Rows by clip file name; ``InvalidInput`` naming the file, row and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"{path}: cannot read manifest: {error}") from None
    rows = _json_rows(path, text) if path.suffix.lower() == ".json" else _csv_rows(text)
    out: dict[str, ClipValues] = {}
    for number, row in enumerate(rows, start=1):
        where = f"{path}: row {number}"
        if not isinstance(row, dict):
            raise InvalidInput(f"{where}: expected an object, got {type(row).__name__}")
        unknown = sorted(set(row) - set(FIELDS))
        if unknown:
            raise InvalidInput(
                f"{where}: unknown field {unknown[0]!r}; fields: {', '.join(FIELDS)}"
            )
        clip = _text(row.get("clip"))
        if clip is None:
            raise InvalidInput(f"{where}: clip: missing (the clip's file name)")
        if clip in out:
            raise InvalidInput(f"{where}: clip: {clip!r} appears twice")
        out[clip] = clip_values(row, where)
    return out


def clip_values(row: dict[str, Any], where: str) -> ClipValues:
    """Checked values of one row (empty cells and missing fields are None).

    Errors start with ``where`` (``FILE: row N``); an empty ``where`` names the fields as
    command-line options (``--style: ...``).
    """
    prefix = f"{where}: " if where else "--"
    style, difficulty, energy = (_text(row.get(k)) for k in ("style", "difficulty", "energy"))
    for field_name, value, allowed in (("style", style, STYLES),
                                       ("difficulty", difficulty, DIFFICULTIES),
                                       ("energy", energy, ENERGIES)):  # fmt: skip
        if value is not None and value not in allowed:
            raise InvalidInput(f"{prefix}{field_name}: {value!r} is not one of {list(allowed)}")
    bpm = _number(row.get("bpm"), prefix, "bpm")
    counts = _number(row.get("counts"), prefix, "counts")
    if counts is not None and counts != int(counts):
        raise InvalidInput(f"{prefix}counts: must be a whole number, got {counts:g}")
    return ClipValues(
        name=_text(row.get("name")),
        style=style,
        difficulty=difficulty,
        energy=energy,
        bpm=bpm,
        counts=int(counts) if counts is not None else None,
    )


def values_for(manifest: dict[str, ClipValues], clip: Path) -> ClipValues:
    """The manifest's values for ``clip`` (by file name, then stem), or none given."""
    return manifest.get(clip.name) or manifest.get(clip.stem) or ClipValues()


def _json_rows(path: Path, text: str) -> list[Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{path}: cannot read manifest: {error}") from None
    rows = document.get("clips") if isinstance(document, dict) else document
    if not isinstance(rows, list):
        raise InvalidInput(f'{path}: manifest must be a list of clips or {{"clips": [...]}}')
    return rows


def _csv_rows(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(line for line in text.splitlines() if line.strip())
    return [{k.strip(): v for k, v in row.items() if k is not None} for row in reader]


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _number(value: object, prefix: str, field_name: str) -> float | None:
    text = _text(value)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        raise InvalidInput(f"{prefix}{field_name}: not a number: {text!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise InvalidInput(f"{prefix}{field_name}: must be a positive number, got {text}")
    return number
