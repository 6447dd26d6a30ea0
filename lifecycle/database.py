"""PostgreSQL connections: a pool per process, or one connection for tools like migrations.

Built in a composition root from ``DatabaseSettings``; nothing connects at import time. A server
that cannot be reached raises ``DatabaseUnavailable`` (transient) with the password redacted.
"""

from __future__ import annotations

import math

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from schemas.errors import ConfigurationError, TransientError
from schemas.settings import DatabaseSettings


class DatabaseUnavailable(TransientError):
    """PostgreSQL could not be reached (down, wrong host or port, refused credentials)."""


def describe_conninfo(conninfo: str) -> str:
    """Return ``user@host:port/dbname`` for messages and logs: never the password."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as error:
        raise ConfigurationError(
            f"not a valid PostgreSQL connection string: {str(error).strip()}"
        ) from None
    user = params.get("user", "")
    host = params.get("host", "") or "localhost"
    port = params.get("port", "") or "5432"
    dbname = params.get("dbname", "") or user
    return f"{user}@{host}:{port}/{dbname}" if user else f"{host}:{port}/{dbname}"


def connect(
    conninfo: str, *, timeout_s: float = 10.0, autocommit: bool = False
) -> psycopg.Connection:
    """Open one connection, or raise ``DatabaseUnavailable`` saying which server failed."""
    where = describe_conninfo(conninfo)
    try:
        return psycopg.connect(
            conninfo, connect_timeout=_whole_seconds(timeout_s), autocommit=autocommit
        )
    except psycopg.OperationalError as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {where}: {reason}") from error


def open_pool(settings: DatabaseSettings, *, name: str = "choreo") -> ConnectionPool:
    """Open a pool and wait for its first ``DB_POOL_MIN_SIZE`` connections (fail fast if down)."""
    if not settings.database_url:
        raise ConfigurationError(
            "DATABASE_URL is not set: point it at PostgreSQL "
            "(e.g. postgresql://choreo:choreo@127.0.0.1:5432/choreo)"
        )
    if settings.pool_min_size > settings.pool_max_size:
        raise ConfigurationError(
            f"DB_POOL_MIN_SIZE ({settings.pool_min_size}) exceeds DB_POOL_MAX_SIZE "
            f"({settings.pool_max_size})"
        )
    where = describe_conninfo(settings.database_url)
    pool: ConnectionPool = ConnectionPool(
        settings.database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        kwargs={"connect_timeout": _whole_seconds(settings.connect_timeout_s)},
        # A connection the server dropped while idle is replaced before a caller sees it.
        check=ConnectionPool.check_connection,
        name=name,
        open=True,
    )
    try:
        pool.wait(timeout=settings.connect_timeout_s)
    except PoolTimeout as error:
        pool.close()
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at {where} within {settings.connect_timeout_s} s "
            "(DB_CONNECT_TIMEOUT)"
        ) from error
    return pool


def _whole_seconds(timeout_s: float) -> int:
    # libpq takes whole seconds, and reads 0 as "wait forever".
    return max(1, math.ceil(timeout_s))
