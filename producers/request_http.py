"""The producer service over HTTP: ``POST /requests``, ``POST /revisions``, the upload trigger.

Served by uvicorn as a Starlette app, like the consumer runtime's push endpoint.

- ``POST /requests``: a JSON request (``path``, ``song``, ``description``, ``constraints``,
  optional ``task_id`` and ``client``) → 202 ``{"task_id", "created", "published"}``; 400 with
  ``{"errors": [{"field", "message"}, ...]}`` (an ``audio_uri`` outside ``SONG_SOURCES`` is
  one, naming the setting); 409 when the task id is taken by another request;
  503 when the database cannot be reached (nothing was stored; try again).
- ``POST /revisions``: a JSON revision (``parent_task_id``, ``keep``, ``redo`` as ``"1-8,17-24"``
  or ``[{"first", "last"}]``, optional ``constraints`` overrides, ``task_id``, ``client``;
  :mod:`producers.revisions`) with the same answers; an unknown parent, a parent without a
  blueprint or bars that do not fit its blueprint are 400s naming the field.
- ``POST /events/storage``: Cloud Storage ``object.v1.finalized`` from Eventarc (binary or
  structured CloudEvent) → 200 with what happened (registered, existing, ignored); a body that is
  not such an event (or is over 1 MB) is poison: 200 ``{"outcome": "undecodable", "reason"}``,
  logged and recorded in ``rejected_messages``; 503/500 make Eventarc retry. The statuses come
  from :mod:`delivery.error_mapping`, the same table every consumer answers with. When an
  ``authorize`` callable is given (:mod:`producers.app` builds it from the OIDC verifier) it
  guards this route.
- ``GET /healthz`` → 200.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from delivery.error_mapping import Outcome, Verdict, classify, is_unexpected, verdict_for
from delivery.http import read_limited
from delivery.rejection import reject
from lifecycle.rejections import Rejection, kept_headers
from producers.publishing import Publisher
from producers.requests import (
    FieldError,
    RequestRejected,
    SubmittedRequest,
    TaskConflict,
    submit_request,
)
from producers.revisions import submit_revision
from producers.song_registry import ObjectReader, register_upload
from schemas.errors import InvalidInput, TransientError
from schemas.event_codec import decode_http
from schemas.event_envelope import EventDecodeError
from schemas.song_limits import DEFAULT_LIMITS, SongSources
from schemas.strict_json import JsonRejected, loads_strict

log = logging.getLogger(__name__)

# An Authorization header in, None to proceed or (HTTP status, reason) to refuse.
Authorize = Callable[[str | None], tuple[int, str] | None]
MAX_REQUEST_BYTES = 64_000
MAX_EVENT_BYTES = 1_000_000


def create_producer_app(
    pool: ConnectionPool,
    *,
    publisher: Publisher | None,
    reader: ObjectReader,
    songs_bucket: str,
    authorize: Authorize | None = None,
    song_sources: SongSources = DEFAULT_LIMITS.sources,
) -> Starlette:
    """The ASGI app; ``publisher`` None leaves publishing to the outbox relay."""

    def submit_choreography(document: Any) -> SubmittedRequest:
        return submit_request(pool, document, publisher=publisher, song_sources=song_sources)

    def submit_revised(document: Any) -> SubmittedRequest:
        return submit_revision(pool, document, publisher=publisher)

    async def post_request(request: Request) -> JSONResponse:
        return await _submitted(request, submit_choreography)

    async def post_revision(request: Request) -> JSONResponse:
        return await _submitted(request, submit_revised)

    async def _submitted(
        request: Request, submit: Callable[[Any], SubmittedRequest]
    ) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_REQUEST_BYTES:
            return _field_errors(413, [FieldError("body", f"exceeds {MAX_REQUEST_BYTES} bytes")])
        try:
            document = _request_document(body)
            submitted = await run_in_threadpool(submit, document)
        except TaskConflict as exc:
            return _field_errors(409, exc.errors)
        except RequestRejected as exc:
            return _field_errors(400, exc.errors)
        except InvalidInput as exc:
            return _field_errors(400, [FieldError("body", str(exc))])
        except (TransientError, PoolTimeout, psycopg.OperationalError) as exc:
            log.warning("request not stored: %s", exc)
            return JSONResponse({"error": f"try again later: {exc}"}, status_code=503)
        content = {
            "task_id": submitted.task_id,
            "created": submitted.created,
            "published": submitted.published,
        }
        return JSONResponse(content, status_code=202)

    async def storage_event(request: Request) -> JSONResponse:
        if authorize is not None:
            refused = await run_in_threadpool(authorize, request.headers.get("authorization"))
            if refused is not None:
                return JSONResponse({"error": refused[1]}, status_code=refused[0])
        body, size = await read_limited(request, MAX_EVENT_BYTES)
        try:
            if size > MAX_EVENT_BYTES:
                raise EventDecodeError(f"body of {size} bytes exceeds {MAX_EVENT_BYTES} bytes")
            event = decode_http(request.headers.items(), body).event
            registration = await run_in_threadpool(
                register_upload, pool, event, reader, songs_bucket=songs_bucket
            )
        except InvalidInput as exc:
            # Poison: a retry would fail the same way. Acknowledge it, and keep it for operators.
            rejection = Rejection(
                receiver="producer",
                transport=f"http {request.url.path}",
                reason=str(exc),
                body=body,
                headers=kept_headers(dict(request.headers.items())),
                body_bytes=size,
            )
            return _answer(await run_in_threadpool(reject, pool, exc, rejection))
        except Exception as exc:
            # The same mapping as every consumer: permanent 200, transient 503, a bug 500.
            outcome = classify(exc)
            log.log(
                logging.ERROR if outcome is Outcome.FAILED_PERMANENTLY else logging.WARNING,
                "storage event not registered (%s): %s", outcome, exc,
            )  # fmt: skip
            return _answer(verdict_for(outcome, str(exc), unexpected=is_unexpected(exc)))
        return JSONResponse(asdict(registration), status_code=200)

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/requests", post_request, methods=["POST"]),
            Route("/revisions", post_revision, methods=["POST"]),
            Route("/events/storage", storage_event, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def _request_document(body: bytes) -> Any:
    """The JSON body; ``RequestRejected`` naming the field (``description``) or ``body``."""
    try:
        return loads_strict(body)
    except JsonRejected as exc:
        if exc.path:
            raise RequestRejected([FieldError(exc.path, exc.problem)]) from None
        raise RequestRejected([FieldError("body", f"is not valid JSON: {exc.problem}")]) from None


def _answer(verdict: Verdict) -> JSONResponse:
    content = {"outcome": str(verdict.outcome)}
    if verdict.reason:
        content["reason"] = verdict.reason
    return JSONResponse(content, status_code=verdict.http_status)


def _field_errors(status: int, errors: list[FieldError]) -> JSONResponse:
    return JSONResponse({"errors": [asdict(e) for e in errors]}, status_code=status)
