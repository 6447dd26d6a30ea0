"""Apply the versioned SQL files in ``schemas/migrations`` to a PostgreSQL database.

Files are named ``NNNN_name.sql`` and applied in version order, each in its own transaction
together with its ``schema_migrations`` row. A session advisory lock serialises concurrent
runners (two deployables starting at once), so the second waits and then finds nothing to do.
An applied file whose checksum changed is refused: applied migrations are history, not drafts.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files

import psycopg

from lifecycle.database import connect
from schemas.errors import ChoreoError

log = logging.getLogger(__name__)

# Any constant works as long as every runner uses the same one; this is "choreo" in ASCII.
ADVISORY_LOCK_KEY = 0x63686F72656F
FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(ChoreoError):
    """The migration files or the database's migration history are inconsistent."""


@dataclass(frozen=True)
class Migration:
    """One SQL file: its version, name, text and the SHA-256 of its bytes."""

    version: int
    name: str
    sql: str
    checksum: str

    @property
    def label(self) -> str:
        """``0001_initial``: how files and messages name this migration."""
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True)
class AppliedMigration:
    """A ``schema_migrations`` row."""

    version: int
    name: str
    checksum: str
    applied_at: datetime

    @property
    def label(self) -> str:
        """``0001_initial``: how files and messages name this migration."""
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True)
class MigrationStatus:
    """What a database has applied, and which known files it has not."""

    applied: list[AppliedMigration]
    pending: list[Migration]


def load_migrations(package: str = "schemas", folder: str = "migrations") -> list[Migration]:
    """Read every ``NNNN_name.sql`` file shipped in ``package/folder``, in version order."""
    found: dict[int, Migration] = {}
    for entry in files(package).joinpath(folder).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = FILE_NAME.match(entry.name)
        if match is None:
            raise MigrationError(
                f"migration file {entry.name!r} is not named NNNN_name.sql "
                "(four digits, underscore, lowercase letters, digits and underscores)"
            )
        data = entry.read_bytes()
        migration = Migration(
            version=int(match["version"]),
            name=match["name"],
            sql=data.decode("utf-8"),
            checksum=hashlib.sha256(data).hexdigest(),
        )
        if migration.version in found:
            raise MigrationError(
                f"two migration files share version {migration.version:04d}: "
                f"{found[migration.version].label}.sql and {entry.name}"
            )
        found[migration.version] = migration
    return [found[version] for version in sorted(found)]


def migrate(
    conninfo: str,
    *,
    migrations: Sequence[Migration] | None = None,
    connect_timeout_s: float = 10.0,
    lock_timeout_s: float = 60.0,
) -> list[Migration]:
    """Apply every pending migration in order and return those applied (empty when current)."""
    known = load_migrations() if migrations is None else list(migrations)
    applied_now: list[Migration] = []
    with connect(conninfo, timeout_s=connect_timeout_s, autocommit=True) as conn:
        _lock(conn, lock_timeout_s)
        try:
            conn.execute(_CREATE_LEDGER)
            for migration in _pending(_applied(conn), known):
                _apply(conn, migration)
                log.info("applied migration %s", migration.label)
                applied_now.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    return applied_now


def status(
    conninfo: str,
    *,
    migrations: Sequence[Migration] | None = None,
    connect_timeout_s: float = 10.0,
) -> MigrationStatus:
    """Return the applied migrations and the pending ones, checking checksums on the way."""
    known = load_migrations() if migrations is None else list(migrations)
    with connect(conninfo, timeout_s=connect_timeout_s, autocommit=True) as conn:
        ledger = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        applied = _applied(conn) if ledger and ledger[0] else []
    return MigrationStatus(applied=applied, pending=_pending(applied, known))


def _apply(conn: psycopg.Connection, migration: Migration) -> None:
    try:
        with conn.transaction():
            conn.execute(migration.sql.encode("utf-8"))
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
    except psycopg.DatabaseError as error:
        raise MigrationError(
            f"migration {migration.label} failed and was rolled back: "
            f"{' '.join(str(error).split())}"
        ) from error


def _lock(conn: psycopg.Connection, lock_timeout_s: float) -> None:
    # lock_timeout bounds the wait for an advisory lock too, so a stuck runner cannot hang us.
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{int(lock_timeout_s * 1000)}",))
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
    except psycopg.errors.LockNotAvailable as error:
        raise MigrationError(
            f"another process has held the migration lock for over {lock_timeout_s} s"
        ) from error
    conn.execute("SELECT set_config('lock_timeout', '0', false)")


def _applied(conn: psycopg.Connection) -> list[AppliedMigration]:
    rows = conn.execute(
        "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
    ).fetchall()
    return [AppliedMigration(*row) for row in rows]


def _pending(applied: list[AppliedMigration], known: Sequence[Migration]) -> list[Migration]:
    by_version = {migration.version: migration for migration in known}
    for row in applied:
        migration = by_version.get(row.version)
        if migration is not None and (row.checksum, row.name) != (
            migration.checksum,
            migration.name,
        ):
            raise MigrationError(
                f"migration {migration.label} was changed after it was applied as {row.label} "
                f"(checksum {row.checksum[:12]}… in the database, {migration.checksum[:12]}… "
                "in the file): restore the file and put the change in a new migration"
            )
    done = {row.version for row in applied}
    newest = max(done, default=0)
    pending = [migration for migration in known if migration.version not in done]
    for migration in pending:
        if migration.version < newest:
            raise MigrationError(
                f"migration {migration.label} is pending but {newest:04d} is already applied: "
                "migrations apply in version order, so renumber it after the newest"
            )
    return pending
