"""Verify the Google-signed OIDC token Pub/Sub push and Eventarc put on each request.

The token is a JWT signed with one of Google's keys (published at ``PUSH_AUTH_CERTS_URL``); its
``aud`` must be ``PUSH_AUTH_AUDIENCE`` and its ``email`` must be the push service account
``PUSH_AUTH_SERVICE_ACCOUNT`` with ``email_verified``. Verification is on unless
``PUSH_AUTH_ENABLED=false`` says otherwise (which logs a warning at start); when it is on, both
the audience and the service account must be set or the service refuses to start
(:func:`push_verifier`): any Google-signed token for the audience would do otherwise.

Certificates are cached for five minutes. A token naming a key the cache lacks (Google rotates
keys) triggers a refetch, but at most one every :data:`UNKNOWN_KID_REFETCH_S`: a stream of tokens
with made-up key ids costs one fetch a minute, not one per request. Fetches run one at a time
outside the lock that readers take, so a slow fetch never holds up tokens with known keys.
"""

from __future__ import annotations

import json
import logging
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
UNKNOWN_KID_REFETCH_S = 60.0
CLOCK_SKEW_S = 10
log = logging.getLogger(__name__)


class Unauthenticated(PermanentError):
    """No bearer token, or one that is not a well-formed JWT (HTTP 401)."""


class Forbidden(PermanentError):
    """A token that is forged, expired, for another audience or another account (HTTP 403)."""


class CertificatesUnavailable(TransientError):
    """Google's signing certificates could not be fetched (HTTP 503: the push is retried)."""


class GoogleTokenVerifier:
    """Checks ``Authorization: Bearer <Google ID token>`` headers against the settings."""

    def __init__(self, settings: PushAuthSettings, request: Any = None) -> None:
        missing = [
            name
            for name, value in (
                ("PUSH_AUTH_AUDIENCE", settings.audience),
                ("PUSH_AUTH_SERVICE_ACCOUNT", settings.service_account_email),
            )
            if not value.strip()
        ]
        if missing:
            raise ConfigurationError(
                f"push authentication is on (PUSH_AUTH_ENABLED defaults to true) but "
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} empty: set "
                "PUSH_AUTH_AUDIENCE to the service's URL and PUSH_AUTH_SERVICE_ACCOUNT to the "
                "push/Eventarc invoker's email, or set PUSH_AUTH_ENABLED=false where nothing "
                "else can reach the service"
            )
        self.settings = settings
        self._request = request or google.auth.transport.requests.Request()
        self._lock = threading.Lock()  # guards the fields below; never held across a fetch
        self._fetch_lock = threading.Lock()  # one fetch at a time
        self._certs: dict[str, str] = {}
        self._fetched_at = -CERTS_TTL_S
        self.fetches = 0

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
        """The certificates to check a token naming ``kid`` against, fetching when needed."""
        while True:
            with self._lock:
                certs, age = self._certs, time.monotonic() - self._fetched_at
            if age <= CERTS_TTL_S and (kid in certs or age < UNKNOWN_KID_REFETCH_S):
                return certs  # fresh: the key is known, or was unknown at a recent fetch
            if self._fetch_lock.acquire(blocking=False):
                break
            with self._fetch_lock:  # another thread is fetching: wait, then look again
                pass
        try:
            fetched = self._fetch()
            with self._lock:
                self._certs, self._fetched_at = fetched, time.monotonic()
                self.fetches += 1
            return fetched
        finally:
            self._fetch_lock.release()

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


def push_verifier(settings: PushAuthSettings, request: Any = None) -> GoogleTokenVerifier | None:
    """The verifier the settings ask for; None (with a warning) only on an explicit opt-out.

    ``ConfigurationError`` when verification is on but the audience or service account is not
    set, so a half-configured service refuses to start instead of accepting any Google token.
    """
    if not settings.enabled:
        log.warning(
            "PUSH_AUTH_ENABLED=false: push and Eventarc requests are NOT authenticated; anyone "
            "who can reach this service can post events (fine only on a private local stack)"
        )
        return None
    return GoogleTokenVerifier(settings, request)


def refusal(verifier: GoogleTokenVerifier, authorization: str | None) -> tuple[int, str] | None:
    """None when the token passes, else the (HTTP status, reason) to refuse with.

    401 for no or a malformed token, 403 for a valid token of the wrong audience or account, 503
    when Google's certificates cannot be fetched: every deployable answers these the same way.
    """
    try:
        verifier.verify(authorization)
    except Unauthenticated as error:
        return 401, str(error)
    except Forbidden as error:
        return 403, str(error)
    except CertificatesUnavailable as error:
        return 503, str(error)
    return None
