"""Migrations on a real PostgreSQL: applied once, in order, under a lock, never silently edited."""

from __future__ import annotations

import hashlib
import itertools
import struct
import threading
from dataclasses import replace

import psycopg
import pytest

from lifecycle.migrations import (
    ADVISORY_LOCK_KEY,
    Migration,
    MigrationError,
    load_migrations,
    migrate,
    status,
)

pytestmark = pytest.mark.integration

TABLES = {
    "schema_migrations",
    "tasks",
    "task_history",
    "songs",
    "moves",
    "move_embeddings",
    "move_library",
    "blueprints",
    "outbox",
    "processed_events",
    "dlq_replay_audit",
}


def _migration(version: int, name: str, sql: str) -> Migration:
    return Migration(version, name, sql, hashlib.sha256(sql.encode()).hexdigest())


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {name for (name,) in rows}


def _library_version(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT version FROM move_library").fetchone()
    assert row is not None
    return int(row[0])


def _insert_move(conn: psycopg.Connection, move_id: str) -> None:
    conn.execute(
        "INSERT INTO moves (move_id, name, style, difficulty, energy, counts, clip_uri) "
        "VALUES (%s, 'Box step', 'hip-hop', 'beginner', 0.4, 8, 'moves/box.mp4')",
        (move_id,),
    )


def test_shipped_migrations_load_in_version_order() -> None:
    """The package ships 0001_initial first, versions strictly increasing, checksums of bytes."""
    shipped = load_migrations()
    assert shipped[0].label == "0001_initial"
    versions = [migration.version for migration in shipped]
    assert versions == sorted(set(versions))
    assert all(
        migration.checksum == hashlib.sha256(migration.sql.encode()).hexdigest()
        for migration in shipped
    )


def test_second_run_applies_nothing(empty_database_url: str) -> None:
    """The first run applies every shipped file and records it; the second run applies none."""
    shipped = load_migrations()
    first = migrate(empty_database_url)
    assert [m.label for m in first] == [m.label for m in shipped]
    assert migrate(empty_database_url) == []
    with psycopg.connect(empty_database_url) as conn:
        ledger = conn.execute(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
        ).fetchall()
    assert ledger == [(m.version, m.name, m.checksum) for m in shipped]


def test_every_table_exists_after_migrating(database_url: str) -> None:
    """Migrating creates every table the system relies on, with the move library row seeded."""
    assert _tables(database_url) >= TABLES
    with psycopg.connect(database_url) as conn:
        assert _library_version(conn) == 0


def test_status_lists_pending_then_applied(empty_database_url: str) -> None:
    """status reports every file as pending on an empty database and as applied after migrate."""
    before = status(empty_database_url)
    assert before.applied == []
    assert [m.label for m in before.pending] == [m.label for m in load_migrations()]
    migrate(empty_database_url)
    after = status(empty_database_url)
    assert after.pending == []
    assert [row.label for row in after.applied] == [m.label for m in load_migrations()]


def test_changed_checksum_is_refused_before_anything_else_applies(database_url: str) -> None:
    """An applied file whose bytes changed is refused, and later pending files stay unapplied."""
    shipped = load_migrations()
    tampered = replace(shipped[0], sql=shipped[0].sql + "\n-- edited", checksum="0" * 64)
    extra = _migration(shipped[-1].version + 1, "extra", "CREATE TABLE extra (id int)")
    with pytest.raises(MigrationError, match="0001_initial was changed after it was applied"):
        migrate(database_url, migrations=[tampered, *shipped[1:], extra])
    assert "extra" not in _tables(database_url)


def test_pending_file_older_than_the_newest_applied_is_refused(empty_database_url: str) -> None:
    """A file numbered below an applied one is refused instead of being applied out of order."""
    first = _migration(1, "one", "CREATE TABLE one (id int)")
    third = _migration(3, "three", "CREATE TABLE three (id int)")
    migrate(empty_database_url, migrations=[first, third])
    second = _migration(2, "two", "CREATE TABLE two (id int)")
    with pytest.raises(MigrationError, match="0002_two is pending but 0003 is already applied"):
        migrate(empty_database_url, migrations=[first, second, third])


def test_a_failing_migration_rolls_back_whole_and_is_not_recorded(
    empty_database_url: str,
) -> None:
    """A file failing halfway leaves neither its earlier statements nor a ledger row behind."""
    good = _migration(1, "good", "CREATE TABLE good (id int)")
    bad = _migration(2, "bad", "CREATE TABLE half (id int); SELECT no_such_function()")
    with pytest.raises(MigrationError, match="0002_bad failed and was rolled back"):
        migrate(empty_database_url, migrations=[good, bad])
    assert "good" in _tables(empty_database_url)
    assert "half" not in _tables(empty_database_url)
    assert [row.label for row in status(empty_database_url, migrations=[good]).applied] == [
        "0001_good"
    ]


def test_concurrent_migrations_apply_each_file_once(empty_database_url: str) -> None:
    """Two threads migrating at once both succeed, and between them apply each file once."""
    barrier = threading.Barrier(2)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append([m.label for m in migrate(empty_database_url)])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    shipped = [m.label for m in load_migrations()]
    assert sorted(results, key=len) == [[], shipped]


def test_migrate_gives_up_when_the_lock_is_held_too_long(empty_database_url: str) -> None:
    """While another session holds the migration lock, migrate times out with a clear error."""
    with psycopg.connect(empty_database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        with pytest.raises(MigrationError, match="held the migration lock"):
            migrate(empty_database_url, lock_timeout_s=0.2)
    assert "tasks" not in _tables(empty_database_url)


def test_embedding_vector_length_must_match_dim(database_url: str) -> None:
    """A vector whose byte length is not 4 * dim is rejected by the database."""
    with psycopg.connect(database_url) as conn:
        _insert_move(conn, "box-step")
        conn.execute(
            "INSERT INTO move_embeddings (move_id, kind, space, dim, vector) "
            "VALUES ('box-step', 'pose', 'pose-v1', 3, %s)",
            (struct.pack("<3f", 0.1, 0.2, 0.3),),
        )
        conn.commit()
        with pytest.raises(psycopg.errors.CheckViolation, match="move_embeddings_vector_length"):
            conn.execute(
                "INSERT INTO move_embeddings (move_id, kind, space, dim, vector) "
                "VALUES ('box-step', 'text', 'text-v1', 4, %s)",
                (struct.pack("<3f", 0.1, 0.2, 0.3),),
            )


def test_keypoints_must_match_their_declared_shape(database_url: str) -> None:
    """Keypoint bytes must equal 4 * channels * frames * joints, or the move is rejected."""
    insert = (
        "INSERT INTO moves (move_id, name, style, difficulty, energy, counts, clip_uri, "
        "keypoints, frames, joints, fps) "
        "VALUES (%s, 'M', 'pop', 'beginner', 0.5, 8, 'moves/m.mp4', %s, 2, 3, 30)"
    )
    with psycopg.connect(database_url) as conn:
        conn.execute(insert, ("fits", bytes(4 * 2 * 2 * 3)))
        with pytest.raises(psycopg.errors.CheckViolation, match="moves_keypoints_shape"):
            conn.execute(insert, ("short", bytes(4 * 2 * 2 * 2)))


def test_library_version_bumps_on_every_move_or_embedding_change(database_url: str) -> None:
    """Every insert, update and delete of moves or embeddings bumps the version; reads do not."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        versions = [_library_version(conn)]
        _insert_move(conn, "box-step")
        versions.append(_library_version(conn))
        conn.execute("UPDATE moves SET energy = 0.6 WHERE move_id = 'box-step'")
        versions.append(_library_version(conn))
        conn.execute(
            "INSERT INTO move_embeddings (move_id, kind, space, dim, vector) "
            "VALUES ('box-step', 'rhythm', 'rhythm-v1', 1, %s)",
            (struct.pack("<f", 1.0),),
        )
        versions.append(_library_version(conn))
        conn.execute("DELETE FROM moves WHERE move_id = 'box-step'")
        versions.append(_library_version(conn))
        conn.execute("SELECT count(*) FROM moves")
        versions.append(_library_version(conn))
    # The cascaded embedding delete is its own statement, so the delete may bump more than once.
    changes, after_read = versions[:-1], versions[-1]
    assert all(later > earlier for earlier, later in itertools.pairwise(changes))
    assert after_read == changes[-1]


def test_library_version_stays_when_the_change_rolls_back(database_url: str) -> None:
    """A move change that rolls back leaves the library version where it was."""
    with psycopg.connect(database_url) as conn:
        _insert_move(conn, "box-step")
        conn.rollback()
        assert _library_version(conn) == 0
