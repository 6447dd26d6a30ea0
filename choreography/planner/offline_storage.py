"""Put what an offline plan names into storage, so ``choreo render`` and the video job find it.

``choreo plan --song FILE`` records the song under a key derived from its content
(``songs/<name>-<sha256[:12]><ext>``) and copies the file there; with ``--library DIR`` it also
copies the clips the blueprint uses to the keys ``choreo moves import`` would give them. Nothing
already stored is replaced: the same song stored twice is one object.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from blobstore.storage import Storage, file_sha256
from schemas.blueprint import Blueprint
from schemas.errors import InvalidInput

AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".ogg", ".flac", ".m4a", ".aac", ".aiff", ".aif"})


def song_key(song: Path) -> str:
    """The storage key of ``song``, named by its content; ``InvalidInput`` if not audio."""
    if not song.is_file():
        raise InvalidInput(f"--song {song}: no such file")
    suffix = song.suffix.lower()
    if suffix not in AUDIO_SUFFIXES:
        raise InvalidInput(
            f"--song {song}: {suffix or 'no extension'} is not an audio file I can read "
            f"(use one of {', '.join(sorted(AUDIO_SUFFIXES))})"
        )
    return f"songs/{_safe_stem(song.stem)}-{file_sha256(song)[:12]}{suffix}"


def store_song(storage: Storage, song: Path, key: str) -> bool:
    """Copy ``song`` to ``key`` unless it is there; False when it already was."""
    return storage.upload_new(song, key, "songs")


def store_clips(storage: Storage, blueprint: Blueprint, clip_files: Mapping[str, Path]) -> int:
    """Copy the clips of the blueprint's moves found in ``clip_files``; how many were new."""
    stored = 0
    for move in {m.move_id: m for m in blueprint.moves_used}.values():
        source = clip_files.get(move.move_id)
        if source is not None and storage.upload_new(source, move.clip_uri, "moves"):
            stored += 1
    return stored


def _safe_stem(stem: str) -> str:
    kept = "".join(c if c.isalnum() or c in "-_" else "-" for c in stem.lower()).strip("-")
    return kept[:40] or "song"
