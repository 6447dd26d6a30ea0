"""The CLI's last line of defence: an error a user can cause is one line on stderr and an exit code.

Commands report what they know best themselves (a blueprint's problems, one per line; the job's
exit codes); whatever escapes them arrives here. A known kind of error (bad input or settings, a
file, a database, Pub/Sub or Cloud Storage that is missing or unreachable, credentials) becomes
``error: <what>`` and exit 1; bad usage is one line and exit 2; anything else is a bug: one line
and exit 70, with the traceback only under ``choreo --debug`` or ``CHOREO_DEBUG=1``. The exit
codes are listed in the README's CLI section.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from schemas.errors import ChoreoError

EXIT_ERROR = 1
EXIT_BUG = 70  # sysexits.h EX_SOFTWARE: an internal error
EXIT_INTERRUPTED = 130

DEBUG_ENV = "CHOREO_DEBUG"


class ChoreoTyper(typer.Typer):
    """The root ``choreo`` app: every failure that escapes a command ends as one line."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(callback=self._root_options, **kwargs)
        self.debug = False

    def _root_options(
        self,
        debug: Annotated[
            bool,
            typer.Option(
                "--debug",
                envvar=DEBUG_ENV,
                help="Show warnings, and the traceback of an unexpected error.",
            ),
        ] = False,
    ) -> None:
        self.debug = debug
        if debug:
            warnings.resetwarnings()
            _set_last_resort_level(logging.WARNING)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command line; exit with the command's status or the error's.

        Python warnings (libraries' deprecations, decoder fallbacks) and the warning records of
        a command that configures no logging (a pool's reconnection attempts, storage retries)
        are for developers: they show only with ``--debug``. Commands that configure logging
        (the services, ``choreo moves``) log as configured.
        """
        self.debug = _truthy(os.environ.get(DEBUG_ENV, ""))
        with _developer_noise_hidden(not self.debug):
            try:
                code = super().__call__(*args, standalone_mode=False, **kwargs)
            except typer.TyperException as error:  # Typer's own copy of click's usage errors
                if type(error).__name__ == "NoArgsIsHelpError":  # the help: shown, or the text
                    if error.format_message().strip():
                        typer.echo(error.format_message().strip(), err=True)
                    sys.exit(error.exit_code)
                _exit(_usage_line(error), error.exit_code)
            except typer.Abort:
                _exit("aborted", EXIT_ERROR)
            except KeyboardInterrupt:
                _exit("interrupted", EXIT_INTERRUPTED)
            except Exception as error:  # nothing escapes as a traceback
                known = describe(error)
                if known is not None:
                    _exit(known, EXIT_ERROR)
                if self.debug:
                    traceback.print_exception(error)
                _exit(
                    f"unexpected {type(error).__name__}: {error} (a bug: run again with `choreo "
                    f"--debug ...` or {DEBUG_ENV}=1 to see the traceback)",
                    EXIT_BUG,
                )
        sys.exit(code if isinstance(code, int) else 0)


def describe(error: BaseException) -> str | None:
    """One line for an error a user can cause (input, settings, files, services); else None."""
    message = (
        _choreo(error)
        or _settings(error)
        or _text(error)
        or _file(error)
        or _database(error)
        or _google(error)
        or _http(error)
    )
    return None if message is None else one_line(message)


@contextmanager
def _developer_noise_hidden(hidden: bool) -> Iterator[None]:
    """Hide Python warnings and unconfigured warning records while a command runs."""
    saved = logging.lastResort.level if logging.lastResort is not None else logging.WARNING
    with warnings.catch_warnings():
        if hidden:
            warnings.simplefilter("ignore")
            _set_last_resort_level(logging.ERROR)
        try:
            yield
        finally:
            _set_last_resort_level(saved)


def _set_last_resort_level(level: int) -> None:
    """The level of the handler of last resort (used when nothing configured logging)."""
    if logging.lastResort is not None:
        logging.lastResort.setLevel(level)


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) made one space."""
    return " ".join(text.split())


def _exit(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {one_line(message)}", err=True)
    sys.exit(code)


def _usage_line(error: typer.TyperException) -> str:
    context = getattr(error, "ctx", None)
    if context is None:
        return error.format_message()
    return f"{error.format_message()} (see `{context.command_path} --help`)"


def _choreo(error: BaseException) -> str | None:
    return str(error) if isinstance(error, ChoreoError) else None


def _settings(error: BaseException) -> str | None:
    if not isinstance(error, ValidationError):
        return None
    problems = [
        f"{'.'.join(str(part) for part in e['loc']) or error.title}: {e['msg']}"
        + (f" (got {e['input']!r})" if isinstance(e.get("input"), str | int | float) else "")
        for e in error.errors(include_url=False)
    ]
    return f"invalid {error.title}: " + "; ".join(problems)


def _text(error: BaseException) -> str | None:
    if isinstance(error, json.JSONDecodeError):
        return f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text: {error.reason} at byte {error.start}"
    return None


def _file(error: BaseException) -> str | None:
    if not isinstance(error, OSError) or error.filename is None:
        return None
    target = f" -> {error.filename2}" if error.filename2 is not None else ""
    return f"{error.filename}{target}: {error.strerror or error}"


def _database(error: BaseException) -> str | None:
    try:
        import psycopg  # noqa: PLC0415 - only when an error arrives
    except ImportError:  # pragma: no cover - the CLI without the database extras
        return None
    if isinstance(error, psycopg.errors.UndefinedTable):
        return f"the database has no choreo schema ({error}): run `choreo db migrate`"
    if isinstance(error, psycopg.OperationalError):
        return f"database unreachable or refused (check DATABASE_URL): {error}"
    if isinstance(error, psycopg.Error):
        return f"database error: {error}"
    return None


def _google(error: BaseException) -> str | None:
    try:
        from google.api_core import exceptions as api  # noqa: PLC0415
        from google.auth import exceptions as auth  # noqa: PLC0415
    except ImportError:  # pragma: no cover - the CLI without the Google extras
        return None
    if isinstance(error, auth.GoogleAuthError):
        return (
            f"no usable Google Cloud credentials ({error}): set GOOGLE_APPLICATION_CREDENTIALS or "
            "run `gcloud auth application-default login`, or use the emulators "
            "(PUBSUB_EMULATOR_HOST, STORAGE_EMULATOR_HOST)"
        )
    if isinstance(error, api.RetryError):
        return (
            f"Google Cloud did not answer ({error.message}; last error: {error.cause}): is the "
            "emulator running and PUBSUB_EMULATOR_HOST / STORAGE_EMULATOR_HOST right?"
        )
    if isinstance(error, api.GoogleAPIError):
        return f"Google Cloud refused: {error}"
    return None


def _http(error: BaseException) -> str | None:
    try:
        import requests  # noqa: PLC0415
    except ImportError:  # pragma: no cover
        return None
    if isinstance(error, requests.ConnectionError | requests.Timeout):
        url = error.request.url if error.request is not None else "the server"
        where = url.decode() if isinstance(url, bytes) else str(url)
        return f"cannot reach {where}: is the service running (STORAGE_EMULATOR_HOST)? ({error})"
    return None
