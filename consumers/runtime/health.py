"""A tiny ``GET /healthz`` server for workers that have no HTTP server of their own."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)


class HealthServer:
    """Answers ``/healthz`` with 200 while ``healthy()`` is true, else 503, on a daemon thread."""

    def __init__(self, host: str, port: int, healthy: Callable[[], bool]) -> None:
        probe = healthy

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/healthz":
                    self.send_error(404, "only /healthz is served here")
                    return
                ok = probe()
                body = b'{"status":"ok"}' if ok else b'{"status":"unavailable"}'
                self.send_response(200 if ok else 503)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # probes every few seconds would drown the real logs

        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful when asked for port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()
        log.info("health check on /healthz", extra={"port": self.port})

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
