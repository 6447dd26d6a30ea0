"""Structured JSON log lines, one per record, with ``severity`` (Cloud Logging's field name)."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from schemas.errors import ConfigurationError

_CONFIGURED = False


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Send every ``logging`` record to stderr as a JSON line (idempotent)."""
    global _CONFIGURED  # noqa: PLW0603 - logging is process-global by nature
    root = logging.getLogger()
    try:
        root.setLevel(level.upper())
    except ValueError:
        raise ConfigurationError(
            f"LOG_LEVEL: unknown level {level!r}; one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
        ) from None
    if _CONFIGURED:
        return
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{levelname}{name}{message}",
                style="{",
                rename_fields={"levelname": "severity", "asctime": "time", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    _CONFIGURED = True
