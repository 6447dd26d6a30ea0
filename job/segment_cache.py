"""A local, content-addressed cache of rendered pieces, encoded audio and clip probes.

Entries are written to a temporary file in the cache directory and renamed into place, so a
reader never sees a half-written entry and two jobs rendering the same piece both end up with a
complete one. Keys come from :mod:`job.ffmpeg_plan`; deleting the directory is always safe.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


class SegmentCache:
    """Files under ``root/<kind>/<key[:2]>/<key><suffix>``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, kind: str, key: str, suffix: str) -> Path:
        """Where the entry for ``key`` lives (whether or not it exists)."""
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def get_or_make(
        self, kind: str, key: str, suffix: str, make: Callable[[Path], None]
    ) -> tuple[Path, bool]:
        """The entry's path and whether it was cached; ``make(tmp)`` writes a missing one."""
        final = self.path(kind, key, suffix)
        if final.is_file() and final.stat().st_size > 0:
            return final, True
        final.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=final.parent)
        os.close(handle)
        temporary = Path(name)
        try:
            make(temporary)
            temporary.replace(final)
        finally:
            temporary.unlink(missing_ok=True)
        return final, False

    def scratch(self) -> tempfile.TemporaryDirectory[str]:
        """A temporary directory on the cache's file system, for files later ``store``d."""
        self.root.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix=".tmp-", dir=self.root)

    def store(self, kind: str, key: str, suffix: str, made: Path) -> Path:
        """Move the finished file ``made`` (from ``scratch``) into place as the entry."""
        final = self.path(kind, key, suffix)
        final.parent.mkdir(parents=True, exist_ok=True)
        made.replace(final)
        return final

    def read_json(self, kind: str, key: str) -> Any:
        """A cached JSON document, or None."""
        path = self.path(kind, key, ".json")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def write_json(self, kind: str, key: str, document: Any) -> None:
        """Store a JSON document atomically."""
        final = self.path(kind, key, ".json")
        final.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=final.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(document, file)
        Path(name).replace(final)
