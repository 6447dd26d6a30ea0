"""One error taxonomy for the whole system.

Every failure a handler can meet is either *transient* (it may succeed if tried again later:
retry with backoff, then dead-letter) or *permanent* (retrying cannot help: record the failure,
publish ``task.failed`` and acknowledge). The mapping to ack/nack and HTTP status codes lives in
one place in the consumer runtime; everything else only raises.
"""

from __future__ import annotations


class ChoreoError(Exception):
    """Root of every error choreo raises on purpose."""


class PermanentError(ChoreoError):
    """Retrying cannot help (bad input, unknown song, nothing matches)."""


class TransientError(ChoreoError):
    """May succeed later (a dependency is down, a timeout, a lock is held)."""


class InvalidInput(PermanentError):
    """Input that does not satisfy its contract; the message names the field."""


class NotFound(PermanentError):
    """A referenced thing (song, move, task, object) does not exist."""


class ConfigurationError(ChoreoError):
    """A setting is missing or wrong; the message names the environment variable."""
