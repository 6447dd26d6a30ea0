"""OIDC verification on the HTTP entrypoint, against locally generated Google-like keys.

The emulator sends no token, so the tests play Google: an RSA key with a self-signed X.509
certificate, published as ``{kid: PEM}`` (the format of Google's v1 certs URL) by a local HTTP
server, and ID tokens signed with it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt
from psycopg_pool import ConnectionPool

from delivery.oidc import (
    UNKNOWN_KID_REFETCH_S,
    Forbidden,
    GoogleTokenVerifier,
    push_verifier,
)
from schemas.errors import ConfigurationError
from schemas.event_codec import to_http_binary
from schemas.settings import PushAuthSettings
from tests.fixtures.messaging import Served, create_queued_task, effect_count, requested_event

pytestmark = pytest.mark.integration
AUDIENCE = "https://consumer.example.run.app/"
SERVICE_ACCOUNT = "pubsub-push@choreo-test.iam.gserviceaccount.com"
KID = "test-key-1"


def _key_and_cert() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "choreo-test-google")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return private, cert.public_bytes(serialization.Encoding.PEM)


class TokenIssuer:
    """Signs ID tokens like Google and serves its certificates on 127.0.0.1."""

    def __init__(self) -> None:
        self._private, certificate = _key_and_cert()
        self._forger, _ = _key_and_cert()
        certs = json.dumps({KID: certificate.decode()}).encode()

        class _Certs(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(certs)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Certs)
        self.certs_url = f"http://127.0.0.1:{self._server.server_address[1]}/oauth2/v1/certs"

    def __enter__(self) -> TokenIssuer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def token(
        self,
        *,
        audience: str = AUDIENCE,
        email: str = SERVICE_ACCOUNT,
        expires_in: int = 3600,
        forged: bool = False,
    ) -> str:
        """An ID token; ``forged`` signs it with another key under the same key id."""
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": audience,
            "sub": "1234567890",
            "email": email,
            "email_verified": True,
            "iat": now - 60 if expires_in > 0 else now + expires_in - 60,
            "exp": now + expires_in,
        }
        signer = crypt.RSASigner.from_string(self._forger if forged else self._private, KID)
        return jwt.encode(signer, claims).decode()  # type: ignore[no-untyped-call]


@pytest.fixture
def issuer() -> Iterator[TokenIssuer]:
    """Google-like signing keys, their certificates served on a local HTTP server."""
    with TokenIssuer() as running:
        yield running


def _verifier(issuer: TokenIssuer) -> GoogleTokenVerifier:
    return GoogleTokenVerifier(
        PushAuthSettings(
            enabled=True,
            audience=AUDIENCE,
            service_account_email=SERVICE_ACCOUNT,
            certs_url=issuer.certs_url,
        )
    )


def test_tokens_are_verified_when_auth_is_on(
    issuer: TokenIssuer, serve: Callable[..., Served], pool: ConnectionPool
) -> None:
    """A valid token passes; a missing one gets 401; forged, expired or foreign ones get 403."""
    served = serve(verifier=_verifier(issuer))
    event = requested_event("t-auth")
    with pool.connection() as conn:
        create_queued_task(conn, "t-auth")
    headers, body = to_http_binary(event)

    def post(token: str | None) -> tuple[int, str]:
        auth = {} if token is None else {"authorization": f"Bearer {token}"}
        response = served.post({**headers, **auth}, body)
        return response.status_code, response.json().get("error", "")

    assert post(None) == (401, "missing bearer token in the Authorization header")
    assert post("not-a-jwt")[0] == 401
    forged = post(issuer.token(forged=True))
    assert forged[0] == 403 and "signature" in forged[1].lower()
    expired = post(issuer.token(expires_in=-3600))
    assert expired[0] == 403 and "expired" in expired[1].lower()
    assert post(issuer.token(audience="https://elsewhere.example"))[0] == 403
    assert post(issuer.token(email="intruder@example.iam.gserviceaccount.com"))[0] == 403
    with pool.connection() as conn:
        assert effect_count(conn, event.id) == 0
    assert post(issuer.token())[0] == 200
    with pool.connection() as conn:
        assert effect_count(conn, event.id) == 1


def test_unreachable_certificates_make_pubsub_retry(serve: Callable[..., Served]) -> None:
    """When Google's certificates cannot be fetched the answer is 503, so the push is retried."""
    settings = PushAuthSettings(
        enabled=True,
        audience=AUDIENCE,
        service_account_email=SERVICE_ACCOUNT,
        certs_url="http://127.0.0.1:9/certs",
    )
    served = serve(verifier=GoogleTokenVerifier(settings))
    headers, body = to_http_binary(requested_event("t-nocerts"))
    token = jwt.encode(  # type: ignore[no-untyped-call]
        crypt.RSASigner.from_string(_key_and_cert()[0], KID), {"aud": AUDIENCE}
    ).decode()
    response = served.post({**headers, "authorization": f"Bearer {token}"}, body)
    assert response.status_code == 503
    assert "cannot fetch" in response.json()["error"]


def test_made_up_key_ids_cost_one_fetch_a_minute(issuer: TokenIssuer) -> None:
    """Unknown key ids are refused from the cached certificates; refetched at most once a minute."""
    verifier = _verifier(issuer)
    verifier.verify(f"Bearer {issuer.token()}")
    assert verifier.fetches == 1
    for n in range(50):
        token = jwt.encode(  # type: ignore[no-untyped-call]
            crypt.RSASigner.from_string(_key_and_cert()[0], f"made-up-{n}"),
            {"aud": AUDIENCE, "iss": "https://accounts.google.com", "email": SERVICE_ACCOUNT},
        ).decode()
        with pytest.raises(Forbidden):
            verifier.verify(f"Bearer {token}")
    assert verifier.fetches == 1
    verifier._fetched_at -= UNKNOWN_KID_REFETCH_S + 1  # a minute later: a rotated key may exist
    with pytest.raises(Forbidden):
        verifier.verify(f"Bearer {token}")
    assert verifier.fetches == 2
    verifier.verify(f"Bearer {issuer.token()}")  # the known key still passes, without a fetch
    assert verifier.fetches == 2


def test_auth_is_on_by_default_and_needs_both_settings(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No settings: on, and refused for want of audience and account; off only when said."""
    for name in ("PUSH_AUTH_ENABLED", "PUSH_AUTH_AUDIENCE", "PUSH_AUTH_SERVICE_ACCOUNT"):
        monkeypatch.delenv(name, raising=False)
    assert PushAuthSettings().enabled is True
    with pytest.raises(ConfigurationError, match="PUSH_AUTH_AUDIENCE and PUSH_AUTH_SERVICE"):
        push_verifier(PushAuthSettings())
    monkeypatch.setenv("PUSH_AUTH_AUDIENCE", AUDIENCE)
    with pytest.raises(ConfigurationError, match="but PUSH_AUTH_SERVICE_ACCOUNT is empty"):
        push_verifier(PushAuthSettings())
    monkeypatch.setenv("PUSH_AUTH_SERVICE_ACCOUNT", SERVICE_ACCOUNT)
    assert isinstance(push_verifier(PushAuthSettings()), GoogleTokenVerifier)
    monkeypatch.setenv("PUSH_AUTH_ENABLED", "false")
    with caplog.at_level(logging.WARNING, logger="delivery.oidc"):
        assert push_verifier(PushAuthSettings()) is None
    assert "NOT authenticated" in caplog.text


@pytest.mark.parametrize("service", ["status", "producer"])
def test_a_half_configured_service_refuses_to_start_in_one_line(service: str) -> None:
    """`choreo serve` with auth on and no service account: exit 1, one line, no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSH_AUTH_")}
    env |= {"PUSH_AUTH_AUDIENCE": AUDIENCE, "PORT": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "choreo_cli.main", "serve", service],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error: push authentication is on (PUSH_AUTH_ENABLED defaults to true) but "
            "PUSH_AUTH_SERVICE_ACCOUNT is empty"
        )
    )
