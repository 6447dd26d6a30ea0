"""The HTTP entrypoint for push subscriptions and Eventarc: an ASGI app served by uvicorn.

``POST /`` accepts binary and structured CloudEvents, the Pub/Sub push wrapper and Eventarc's
``messagePublished`` wrapper (all decoded by :func:`schemas.event_codec.from_http` into the same
typed event) and answers with the status :mod:`delivery.error_mapping` gives: 2xx acks,
5xx makes Pub/Sub retry (then dead-letter). A body that can never be handled (it does not decode,
or it is over ``HTTP_MAX_BODY_BYTES``) is answered 200, logged, and recorded in
``rejected_messages`` (:mod:`lifecycle.rejections`), since a retry would fail the same way. With
``PUSH_AUTH_ENABLED`` every request must carry a valid Google-signed OIDC token (401 without
one, 403 for a forged, expired or foreign one). ``GET /healthz`` answers 200. On SIGTERM uvicorn
stops accepting connections and finishes in-flight requests within ``HTTP_SHUTDOWN_GRACE``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from consumers.runtime.handler import EventProcessor
from delivery.http import read_limited
from delivery.oidc import GoogleTokenVerifier, refusal
from lifecycle.rejections import Rejection, kept_headers
from schemas.event_codec import from_http
from schemas.event_envelope import EventDecodeError

log = logging.getLogger(__name__)


def create_app(
    processor: EventProcessor,
    verifier: GoogleTokenVerifier | None = None,
    *,
    max_body_bytes: int = 16_000_000,
    alive: Callable[[], bool] | None = None,
) -> Starlette:
    """The ASGI app: ``POST /`` for events, ``GET /healthz``."""

    async def receive_event(request: Request) -> JSONResponse:
        refused = await _check_token(verifier, request)
        if refused is not None:
            return refused
        body, total = await read_limited(request, max_body_bytes)
        if total > max_body_bytes:
            declared = request.headers.get("content-length", "").isdigit()
            size = f"{total} bytes" if declared else f"more than {max_body_bytes} bytes"
            error: Exception = EventDecodeError(
                f"body of {size} exceeds HTTP_MAX_BODY_BYTES={max_body_bytes}"
            )
        else:
            try:
                delivery = from_http(request.headers.items(), body)
            except EventDecodeError as decode_error:
                error = decode_error
            except Exception:  # a decoder bug: 500, so the transport retries, then dead-letters
                log.exception("decoding failed unexpectedly", extra={"path": request.url.path})
                return _error(500, "internal error while decoding the event")
            else:
                verdict = await run_in_threadpool(processor.process, delivery)
                content = {"outcome": str(verdict.outcome), "event_id": delivery.event.id}
                if verdict.reason:
                    content["reason"] = verdict.reason
                return JSONResponse(content, status_code=verdict.http_status)
        rejection = Rejection(
            receiver=processor.handler.consumer,
            transport=f"http {request.url.path}",
            reason=str(error),
            body=body,
            headers=kept_headers(dict(request.headers.items())),
            body_bytes=total,
        )
        verdict = await run_in_threadpool(processor.reject, error, rejection)
        return JSONResponse(
            {"outcome": str(verdict.outcome), "reason": verdict.reason},
            status_code=verdict.http_status,
        )

    async def healthz(_request: Request) -> JSONResponse:
        if alive is not None and not alive():
            return JSONResponse({"status": "a background loop stopped"}, status_code=503)
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/", receive_event, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


async def _check_token(
    verifier: GoogleTokenVerifier | None, request: Request
) -> JSONResponse | None:
    """None when the request may proceed, else the 401/403/503 refusal."""
    if verifier is None:
        return None
    refused = await run_in_threadpool(refusal, verifier, request.headers.get("authorization"))
    if refused is None:
        return None
    status, reason = refused
    client = request.client.host if request.client else None
    log.warning("request refused: %s", reason, extra={"status": status, "client": client})
    return _error(status, reason)


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)
