"""Reading a delivery's body without trusting its size."""

from __future__ import annotations

from starlette.requests import Request


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
