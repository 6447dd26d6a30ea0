"""Where the demo keeps its data, what it needs installed, and its database.

Everything lives under ``CHOREO_DATA_DIR`` (default ``.choreo``) so a second run finds what the
first one built: ``postgres/`` (embedded PostgreSQL via pgserver, unless ``DATABASE_URL`` is
set), ``storage/`` (the local storage root: songs, move clips, videos), ``library/`` and
``library-salsa/`` (the move bundles, ``assets.DemoLibrary``), ``out/<task_id>/`` (blueprint
JSON and timeline PNG) and ``cache/job``.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lifecycle.migrations import migrate
from schemas.errors import ConfigurationError

log = logging.getLogger(__name__)

FFMPEG_HELP = (
    "ffmpeg is not installed (or not on PATH): the video job needs ffmpeg and ffprobe. "
    "Install them with `sudo apt-get install ffmpeg` (Debian/Ubuntu), `brew install ffmpeg` "
    "(macOS) or from https://ffmpeg.org/download.html, then run the demo again"
)


@dataclass(frozen=True)
class DemoPaths:
    """The demo's folders under one data directory (absolute, so job subprocesses agree)."""

    data_dir: Path

    @property
    def postgres(self) -> Path:
        """The embedded PostgreSQL data directory."""
        return self.data_dir / "postgres"

    @property
    def storage_root(self) -> Path:
        """The local storage root (``STORAGE_ROOT``)."""
        return self.data_dir / "storage"

    @property
    def job_cache(self) -> Path:
        """The video job's segment cache."""
        return self.data_dir / "cache" / "job"

    def outputs(self, task_id: str) -> Path:
        """Where one run's blueprint JSON and timeline PNG go."""
        return self.data_dir / "out" / task_id

    @classmethod
    def under(cls, data_dir: Path) -> DemoPaths:
        """The layout under ``data_dir``, created if missing."""
        paths = cls(data_dir.expanduser().resolve())
        for folder in (paths.storage_root, paths.job_cache):
            folder.mkdir(parents=True, exist_ok=True)
        return paths


def check_ffmpeg() -> None:
    """Raise ``ConfigurationError`` saying how to install ffmpeg when it is missing."""
    missing = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing:
        raise ConfigurationError(f"{' and '.join(missing)} not found. {FFMPEG_HELP}")


@contextmanager
def demo_database(paths: DemoPaths, database_url: str) -> Iterator[tuple[str, str]]:
    """A migrated database: ``DATABASE_URL`` if given, else embedded; (url, description)."""
    if database_url:
        migrate(database_url)
        yield database_url, "PostgreSQL from DATABASE_URL"
        return
    try:
        import pgserver  # noqa: PLC0415 - only the embedded default needs it
    except ImportError as error:
        raise ConfigurationError(
            "embedded PostgreSQL needs the pgserver package (`pip install pgserver`), "
            "or set DATABASE_URL to a PostgreSQL you run"
        ) from error
    fresh = not paths.postgres.exists()
    try:
        # 'stop': the server stops when the last process using this data dir lets go of it.
        get_server = pgserver.get_server  # type: ignore[attr-defined]
        server = get_server(paths.postgres, cleanup_mode="stop")
    except Exception as error:  # pgserver raises plain exceptions with initdb/pg_ctl output
        raise ConfigurationError(
            f"embedded PostgreSQL did not start in {paths.postgres}: {error}. "
            "Delete that folder to start over, or set DATABASE_URL"
        ) from error
    try:
        url = server.get_uri()
        migrate(url)
        state = "created" if fresh else "reused"
        yield url, f"embedded PostgreSQL ({state}) in {paths.postgres}"
    finally:
        server.cleanup()


def job_environment(paths: DemoPaths, database_url: str, log_level: str) -> dict[str, str]:
    """The variables the consumers and the video job subprocesses must agree on."""
    return {
        "DATABASE_URL": database_url,
        "STORAGE_BACKEND": "local",
        "STORAGE_ROOT": str(paths.storage_root),
        "JOB_CACHE_DIR": str(paths.job_cache),
        # The job writes its terminal event to the outbox; the demo's relay publishes it.
        "JOB_PUBLISH": "outbox",
        "DISPATCHER_LAUNCHER": "local",
        # The job's log lines reach the demo's terminal (one stream); quiet unless --verbose.
        "LOG_LEVEL": log_level,
    }


def apply_environment(values: dict[str, str]) -> None:
    """Export ``values`` so the composition roots and job subprocesses read the same settings."""
    os.environ.update(values)
