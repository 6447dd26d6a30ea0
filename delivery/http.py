"""HTTP for every deployable: a body read without trusting its size, and a server that drains."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request

from schemas.settings import HttpSettings

log = logging.getLogger(__name__)


async def read_limited(request: Request, max_bytes: int) -> tuple[bytes, int]:
    """At most ``max_bytes + 1`` bytes of the body, and its size (declared, or as far as read).

    A declared ``Content-Length`` over the limit is not read at all; a body without one is read
    until it passes the limit, so an endless upload costs at most ``max_bytes`` of memory.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return b"", int(declared)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            break
    return bytes(body[: max_bytes + 1]), len(body)


def serve(app: Starlette, settings: HttpSettings | None = None) -> None:
    """Serve ``app`` with uvicorn until SIGTERM/SIGINT, then drain in-flight requests."""
    settings = settings or HttpSettings()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # our JSON logging, configured by the composition root
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        lifespan="off",
    )
    # uvicorn drains, then re-raises the signal it caught to the handler installed before it;
    # this one makes the drained exit a clean one (exit code 0) instead of death by SIGTERM.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _drained)
    uvicorn.Server(config).run()


def _drained(signum: int, _frame: FrameType | None) -> None:
    log.info("HTTP server drained after %s", signal.Signals(signum).name)
