"""The CLI's top-level handler: known errors are one line, exit 1; bugs exit 70; usage exits 2."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import psycopg
import pytest
import typer
from google.api_core import exceptions as api
from google.auth.exceptions import DefaultCredentialsError
from pydantic import ValidationError

from choreo_cli.errors import ChoreoTyper, describe
from schemas.errors import InvalidInput
from schemas.settings import DatabaseSettings


def _app(error: BaseException | None = None) -> ChoreoTyper:
    """A root app whose ``boom`` command raises ``error`` and whose ``ok`` command exits 4."""
    app = ChoreoTyper(name="choreo", pretty_exceptions_enable=False)

    @app.command()
    def boom() -> None:
        warnings.warn("a library deprecation", DeprecationWarning, stacklevel=1)
        if error is not None:
            raise error

    @app.command()
    def ok(count: int = 1) -> None:
        raise typer.Exit(4 if count else 0)

    return app


def _run(app: ChoreoTyper, *args: str) -> int:
    with pytest.raises(SystemExit) as exited:
        app(args=list(args), prog_name="choreo")
    code = exited.value.code
    assert isinstance(code, int)
    return code


def test_a_bug_is_one_line_exit_70_without_traceback(
    capsys: pytest.CaptureFixture[str], recwarn: pytest.WarningsRecorder
) -> None:
    """An unexpected exception prints one line naming it and how to see the traceback."""
    assert _run(_app(RuntimeError("kaput")), "boom") == 70
    assert not [w for w in recwarn if "a library deprecation" in str(w.message)]
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "error: unexpected RuntimeError: kaput (a bug: run again with `choreo --debug ...` or "
        "CHOREO_DEBUG=1 to see the traceback)"
    ]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback_and_warnings(
    how: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    recwarn: pytest.WarningsRecorder,
) -> None:
    """``--debug`` or ``CHOREO_DEBUG=1`` prints the traceback and the warnings; exit still 70."""
    args = ["boom"]
    if how == "flag":
        args.insert(0, "--debug")
    else:
        monkeypatch.setenv("CHOREO_DEBUG", "1")
    assert _run(_app(RuntimeError("kaput")), *args) == 70
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert [w for w in recwarn if "a library deprecation" in str(w.message)]
    assert err.splitlines()[-1].startswith("error: unexpected RuntimeError: kaput")


def test_a_known_error_is_one_line_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    """A ChoreoError escaping a command is its message on one line, exit 1, no warnings."""
    assert _run(_app(InvalidInput("song: no such\nfile")), "boom") == 1
    assert capsys.readouterr().err == "error: song: no such file\n"


def test_usage_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid number or unknown command is one line naming the help to read, exit 2."""
    assert _run(_app(), "ok", "--count", "many") == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("error: Invalid value for '--count'")
    assert err.rstrip().endswith("(see `choreo ok --help`)")
    assert _run(_app(), "bogus") == 2
    assert capsys.readouterr().err == "error: No such command 'bogus'. (see `choreo --help`)\n"


def test_exit_codes_of_commands_pass_through(capsys: pytest.CaptureFixture[str]) -> None:
    """typer.Exit(4) exits 4; a command that returns exits 0."""
    assert _run(_app(), "ok") == 4
    assert _run(_app(), "ok", "--count", "0") == 0
    assert _run(_app(), "boom") == 0
    assert capsys.readouterr().err == ""


def _settings_error(monkeypatch: pytest.MonkeyPatch) -> ValidationError:
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "abc")
    with pytest.raises(ValidationError) as raised:
        DatabaseSettings()
    return raised.value


def _json_error() -> json.JSONDecodeError:
    with pytest.raises(json.JSONDecodeError) as raised:
        json.loads("{not json")
    return raised.value


def test_describe_maps_each_known_error_to_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Settings, JSON, files, database, credentials and Google API errors each become one line."""
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError) as not_found:
        missing.read_text()
    cases: list[tuple[BaseException, str]] = [
        (
            _settings_error(monkeypatch),
            "invalid DatabaseSettings: DB_CONNECT_TIMEOUT: Input should be a valid number, "
            "unable to parse string as a number (got 'abc')",
        ),
        (
            _json_error(),
            "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2",
        ),
        (
            UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
            "not UTF-8 text: invalid start byte at byte 0",
        ),
        (not_found.value, f"{missing}: No such file or directory"),
        (
            psycopg.OperationalError("connection failed:\n\tIs the server running?"),
            "database unreachable or refused (check DATABASE_URL): connection failed: Is the "
            "server running?",
        ),
        (
            DefaultCredentialsError("File /x.json was not found."),
            "no usable Google Cloud credentials (File /x.json was not found.): set "
            "GOOGLE_APPLICATION_CREDENTIALS or run `gcloud auth application-default login`, or "
            "use the emulators (PUBSUB_EMULATOR_HOST, STORAGE_EMULATOR_HOST)",
        ),
        (
            api.RetryError("Timeout of 60.0s exceeded", api.ServiceUnavailable("no route")),
            "Google Cloud did not answer (Timeout of 60.0s exceeded; last error: 503 no route): "
            "is the emulator running and PUBSUB_EMULATOR_HOST / STORAGE_EMULATOR_HOST right?",
        ),
        (
            api.NotFound("Subscription does not exist"),
            "Google Cloud refused: 404 Subscription does not exist",
        ),
    ]
    for error, line in cases:
        assert describe(error) == line
    assert describe(RuntimeError("a bug")) is None
    assert describe(OSError("no file name")) is None
