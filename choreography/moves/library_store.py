"""PostgreSQL storage of moves (table ``moves`` from ``schemas/migrations/0001_initial.sql``).

Keypoints and poses are stored as raw little-endian float32 ``bytea`` with their shape in the
``frames``/``joints``/``channels`` columns; energy levels map to numbers via ``ENERGY_VALUES``.
Functions take an open psycopg connection and leave transaction control to the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from choreography.moves.model import (
    ENERGY_VALUES,
    Move,
    energy_level,
    keypoints_from_bytes,
    keypoints_to_bytes,
)
from schemas.errors import InvalidInput, NotFound

_COLUMNS = sql.SQL(
    "move_id, name, description, style, difficulty, energy, tempo_bpm, counts, clip_uri, tags, "
    "keypoints, frames, joints, channels, fps"
)

_UPSERT = """
INSERT INTO moves (move_id, name, description, style, difficulty, energy, tempo_bpm, counts,
                   clip_uri, tags, keypoints, frames, joints, channels, fps, start_pose, end_pose)
VALUES (%(move_id)s, %(name)s, %(description)s, %(style)s, %(difficulty)s, %(energy)s,
        %(tempo_bpm)s, %(counts)s, %(clip_uri)s, %(tags)s, %(keypoints)s, %(frames)s,
        %(joints)s, %(channels)s, %(fps)s, %(start_pose)s, %(end_pose)s)
ON CONFLICT (move_id) DO UPDATE SET
    name = EXCLUDED.name, description = EXCLUDED.description, style = EXCLUDED.style,
    difficulty = EXCLUDED.difficulty, energy = EXCLUDED.energy, tempo_bpm = EXCLUDED.tempo_bpm,
    counts = EXCLUDED.counts, clip_uri = EXCLUDED.clip_uri, tags = EXCLUDED.tags,
    keypoints = EXCLUDED.keypoints, frames = EXCLUDED.frames, joints = EXCLUDED.joints,
    channels = EXCLUDED.channels, fps = EXCLUDED.fps, start_pose = EXCLUDED.start_pose,
    end_pose = EXCLUDED.end_pose
RETURNING (xmax = 0) AS inserted
"""


@dataclass(frozen=True)
class MoveFilters:
    """What ``list_moves``/``count_moves`` select; ``None`` or empty means no restriction."""

    styles: Sequence[str] = ()
    difficulties: Sequence[str] = ()
    energies: Sequence[str] = ()
    tags_all: Sequence[str] = field(default_factory=tuple)
    limit: int | None = None


def upsert_move(conn: psycopg.Connection[Any], move: Move) -> bool:
    """Insert or update a move by ``move_id``; return True when it was new."""
    row = conn.execute(_UPSERT, _row_params(move)).fetchone()
    if row is None:  # pragma: no cover - RETURNING always yields one row
        raise RuntimeError("upsert returned no row")
    return bool(row[0])


def get_move(conn: psycopg.Connection[Any], move_id: str) -> Move:
    """The move with this id, or ``NotFound``."""
    query = sql.SQL("SELECT {} FROM moves WHERE move_id = %s").format(_COLUMNS)
    row = conn.execute(query, (move_id,)).fetchone()
    if row is None:
        raise NotFound(f"move {move_id!r} is not in the library")
    return _move_from_row(row)


def list_moves(conn: psycopg.Connection[Any], filters: MoveFilters | None = None) -> list[Move]:
    """Moves matching the filters, ordered by ``move_id``."""
    filters = filters or MoveFilters()
    where, params = _where(filters)
    query = sql.SQL("SELECT {} FROM moves {} ORDER BY move_id LIMIT %(limit)s").format(
        _COLUMNS, where
    )
    params["limit"] = filters.limit  # LIMIT NULL means no limit
    return [_move_from_row(row) for row in conn.execute(query, params).fetchall()]


def count_moves(conn: psycopg.Connection[Any], filters: MoveFilters | None = None) -> int:
    """How many moves match the filters (all moves without filters)."""
    where, params = _where(filters or MoveFilters())
    query = sql.SQL("SELECT count(*) FROM moves {}").format(where)
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


def _where(filters: MoveFilters) -> tuple[sql.Composable, dict[str, Any]]:
    clauses: list[sql.Composable] = []
    params: dict[str, Any] = {}
    if filters.styles:
        clauses.append(sql.SQL("style = ANY(%(styles)s)"))
        params["styles"] = list(filters.styles)
    if filters.difficulties:
        clauses.append(sql.SQL("difficulty = ANY(%(difficulties)s)"))
        params["difficulties"] = list(filters.difficulties)
    if filters.energies:
        unknown = sorted(set(filters.energies) - set(ENERGY_VALUES))
        if unknown:
            raise InvalidInput(f"energy: unknown energy {unknown}; one of {list(ENERGY_VALUES)}")
        # Select by third, matching energy_level(), so numbers written by other tools count too.
        clauses.append(sql.SQL("LEAST(floor(energy * 3), 2)::int = ANY(%(energy_bands)s)"))
        params["energy_bands"] = [list(ENERGY_VALUES).index(level) for level in filters.energies]
    if filters.tags_all:
        clauses.append(sql.SQL("tags @> %(tags)s"))
        params["tags"] = list(filters.tags_all)
    if not clauses:
        return sql.SQL(""), params
    return sql.SQL("WHERE ") + sql.SQL(" AND ").join(clauses), params


def _row_params(move: Move) -> dict[str, Any]:
    return {
        "move_id": move.move_id,
        "name": move.name,
        "description": move.description,
        "style": move.style,
        "difficulty": move.difficulty,
        "energy": ENERGY_VALUES[move.energy],
        "tempo_bpm": move.tempo_bpm,
        "counts": move.counts,
        "clip_uri": move.clip_uri,
        "tags": list(move.tags),
        "keypoints": keypoints_to_bytes(move.keypoints),
        "frames": move.frames,
        "joints": move.keypoints.shape[1],
        "channels": move.keypoints.shape[2],
        "fps": move.fps,
        "start_pose": keypoints_to_bytes(move.start_pose),
        "end_pose": keypoints_to_bytes(move.end_pose),
    }


def _move_from_row(row: Sequence[Any]) -> Move:
    (move_id, name, description, style, difficulty, energy, tempo_bpm, counts, clip_uri, tags,
     keypoints, frames, joints, channels, fps) = row  # fmt: skip
    if keypoints is None:
        raise InvalidInput(f"move {move_id!r}: stored without keypoints")
    return Move(
        move_id=move_id,
        name=name,
        description=description,
        style=style,
        difficulty=difficulty,
        energy=energy_level(float(energy)),
        tempo_bpm=float(tempo_bpm),
        counts=int(counts),
        clip_uri=clip_uri,
        tags=tuple(tags),
        keypoints=keypoints_from_bytes(bytes(keypoints), (frames, joints, channels)),
        fps=float(fps),
    )
