"""Verify the Google-signed OIDC token Pub/Sub push and Eventarc put on each request.

The token is a JWT signed with one of Google's keys (published at ``PUSH_AUTH_CERTS_URL``); its
``aud`` must be ``PUSH_AUTH_AUDIENCE`` and, when set, its ``email`` must be the push service
account ``PUSH_AUTH_SERVICE_ACCOUNT`` with ``email_verified``. Certificates are cached for five
minutes and refetched once when a token names a key the cache lacks (Google rotates keys).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import google.auth.transport.requests
from google.auth import exceptions as auth_exceptions
from google.auth import jwt

from schemas.errors import ConfigurationError, PermanentError, TransientError
from schemas.settings import PushAuthSettings

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
CERTS_TTL_S = 300.0
CLOCK_SKEW_S = 10


class Unauthenticated(PermanentError):
    """No bearer token, or one that is not a well-formed JWT (HTTP 401)."""


class Forbidden(PermanentError):
    """A token that is forged, expired, for another audience or another account (HTTP 403)."""


class CertificatesUnavailable(TransientError):
    """Google's signing certificates could not be fetched (HTTP 503: the push is retried)."""


class GoogleTokenVerifier:
    """Checks ``Authorization: Bearer <Google ID token>`` headers against the settings."""

    def __init__(self, settings: PushAuthSettings, request: Any = None) -> None:
        if not settings.audience:
            raise ConfigurationError("PUSH_AUTH_ENABLED is true but PUSH_AUTH_AUDIENCE is empty")
        self.settings = settings
        self._request = request or google.auth.transport.requests.Request()
        self._lock = threading.Lock()
        self._certs: dict[str, str] = {}
        self._fetched_at = -CERTS_TTL_S

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims; ``Unauthenticated`` or ``Forbidden`` naming what is wrong."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("missing bearer token in the Authorization header")
        try:
            header = jwt.decode_header(token.strip())  # type: ignore[no-untyped-call]
        except (ValueError, auth_exceptions.GoogleAuthError) as error:
            raise Unauthenticated(f"bearer token is not a JWT: {error}") from None
        certs = self._certs_for(str(header.get("kid", "")))
        try:
            claims = jwt.decode(  # type: ignore[no-untyped-call]
                token.strip(),
                certs=certs,
                audience=self.settings.audience,
                clock_skew_in_seconds=CLOCK_SKEW_S,
            )
        except (ValueError, auth_exceptions.GoogleAuthError) as error:
            raise Forbidden(f"token rejected: {error}") from None
        self._check_identity(claims)
        return dict(claims)

    def _check_identity(self, claims: dict[str, Any]) -> None:
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise Forbidden(f"token issuer {claims.get('iss')!r} is not Google")
        wanted = self.settings.service_account_email
        if wanted and (claims.get("email") != wanted or claims.get("email_verified") is not True):
            raise Forbidden(f"token email {claims.get('email')!r} is not {wanted!r} (verified)")

    def _certs_for(self, kid: str) -> dict[str, str]:
        with self._lock:
            stale = time.monotonic() - self._fetched_at > CERTS_TTL_S
            if stale or kid not in self._certs:
                self._certs = self._fetch()
                self._fetched_at = time.monotonic()
            return self._certs

    def _fetch(self) -> dict[str, str]:
        url = self.settings.certs_url
        try:
            response = self._request(url, method="GET")
        except auth_exceptions.TransportError as error:
            raise CertificatesUnavailable(f"cannot fetch {url}: {error}") from None
        if response.status != 200:
            raise CertificatesUnavailable(f"certificates at {url} answered HTTP {response.status}")
        try:
            certs = json.loads(response.data)
        except ValueError:
            certs = None
        if not isinstance(certs, dict):
            raise CertificatesUnavailable(f"certificates at {url} are not a JSON object")
        return {str(k): str(v) for k, v in certs.items()}
