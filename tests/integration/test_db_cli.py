"""`choreo db migrate` and `choreo db status` against a real PostgreSQL, and their error paths."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from choreo_cli.main import app
from lifecycle.migrations import load_migrations

pytestmark = pytest.mark.integration

runner = CliRunner()
UNREACHABLE = "postgresql://choreo:s3cret-pw@127.0.0.1:1/choreo"


def test_status_then_migrate_then_status(empty_database_url: str) -> None:
    """status lists pending files, migrate applies them, then status lists them as applied."""
    labels = [migration.label for migration in load_migrations()]
    env = {"DATABASE_URL": empty_database_url}

    before = runner.invoke(app, ["db", "status"], env=env)
    assert before.exit_code == 0, before.output
    assert [f"pending  {label}" for label in labels] == [
        line for line in before.stdout.splitlines() if line.startswith("pending")
    ]
    assert "run `choreo db migrate`" in before.stdout

    applied = runner.invoke(app, ["db", "migrate"], env=env)
    assert applied.exit_code == 0, applied.output
    assert applied.stdout.splitlines() == [f"applied {label}" for label in labels]

    after = runner.invoke(app, ["db", "status"], env=env)
    assert after.exit_code == 0, after.output
    assert [
        line.split()[1] for line in after.stdout.splitlines() if line.startswith("applied")
    ] == labels
    assert "pending" not in after.stdout
    assert "up to date" in after.stdout


def test_second_migrate_says_nothing_to_apply(database_url: str) -> None:
    """Migrating an up-to-date database succeeds and says there was nothing to apply."""
    result = runner.invoke(app, ["db", "migrate"], env={"DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "database schema is up to date: nothing to apply"


@pytest.mark.parametrize("command", ["migrate", "status"])
def test_unset_database_url_is_a_clear_error(command: str) -> None:
    """With DATABASE_URL unset, the command exits 1 with an error naming DATABASE_URL."""
    result = runner.invoke(app, ["db", command], env={"DATABASE_URL": None})
    assert result.exit_code == 1
    assert result.stderr.startswith("error: DATABASE_URL is not set")


@pytest.mark.parametrize("command", ["migrate", "status"])
def test_unreachable_database_is_a_clear_error_without_the_password(command: str) -> None:
    """An unreachable server exits 1 naming the server and DATABASE_URL, never the password."""
    result = runner.invoke(
        app, ["db", command], env={"DATABASE_URL": UNREACHABLE, "DB_CONNECT_TIMEOUT": "2"}
    )
    assert result.exit_code == 1
    assert "cannot connect to PostgreSQL at choreo@127.0.0.1:1/choreo" in result.stderr
    assert "(check DATABASE_URL)" in result.stderr
    assert "s3cret-pw" not in result.output


def test_malformed_database_url_is_a_clear_error() -> None:
    """A DATABASE_URL that is not a connection string exits 1 saying so."""
    result = runner.invoke(app, ["db", "migrate"], env={"DATABASE_URL": "not a url"})
    assert result.exit_code == 1
    assert "not a valid PostgreSQL connection string" in result.stderr
    assert "(check DATABASE_URL)" in result.stderr


def test_installed_entry_point_exits_1_when_database_url_is_unset() -> None:
    """The real `choreo db migrate` process exits with status 1 and the error on stderr."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    completed = subprocess.run(
        [sys.executable, "-m", "choreo_cli.main", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert "DATABASE_URL is not set" in completed.stderr
    assert completed.stdout == ""
