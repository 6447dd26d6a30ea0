"""Cloud Storage adapter (google-cloud-storage; the emulator when ``STORAGE_EMULATOR_HOST`` is set).

The client library's own retries are switched off (``retry=None``) so
:func:`blobstore.storage.with_retries` is the one retry policy. Errors are sorted here: 404, 403,
401 and 400 are permanent; 429, 5xx, timeouts and broken connections transient. Downloads are
checked against the object's size and MD5 (or CRC32C) when the store reports them; the upload
is conditional (``if_generation_match=0``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import google_crc32c
import requests
from google.api_core import exceptions as api
from google.auth.exceptions import TransportError

from blobstore.storage import (
    ObjectTooLarge,
    PermanentStorageError,
    StorageKind,
    TransientStorageError,
)
from schemas.errors import ConfigurationError
from schemas.storage_uri import UnsafeStorageUri, parse_storage_uri

_PERMANENT = (api.NotFound, api.Forbidden, api.Unauthorized, api.BadRequest)
_TRANSIENT = (
    api.TooManyRequests, api.ServerError, api.RequestRangeNotSatisfiable, api.DataLoss,
    requests.ConnectionError, requests.Timeout, TransportError, ConnectionError, TimeoutError,
)  # fmt: skip


def gcs_client(emulator_host: str, project_id: str) -> Any:
    """A ``storage.Client``: anonymous on the emulator at ``emulator_host``, else default creds."""
    from google.cloud.storage import Client  # noqa: PLC0415 - only the GCS backend pays for the import

    if not emulator_host:
        from google.auth.exceptions import DefaultCredentialsError  # noqa: PLC0415

        try:
            return Client(project=project_id or None)
        except DefaultCredentialsError as error:
            reason = str(error).split(". ", 1)[0].rstrip(".")
            raise ConfigurationError(
                f"no Google Cloud credentials for Cloud Storage ({reason}): set "
                "STORAGE_EMULATOR_HOST for the emulator, or GOOGLE_APPLICATION_CREDENTIALS, or run "
                "`gcloud auth application-default login`"
            ) from None
    from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415

    return Client(
        project=project_id,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": emulator_host},
    )


class GcsStorage:
    """Objects in Cloud Storage; relative keys go to the bucket configured for their kind."""

    def __init__(self, client: Any, buckets: Mapping[StorageKind, str]) -> None:
        self.client = client
        self.buckets = dict(buckets)

    def locate(self, uri: str, kind: StorageKind) -> tuple[str, str]:
        """(bucket, key) of ``uri``; relative keys use the bucket for ``kind``."""
        try:
            location = parse_storage_uri(uri)
        except UnsafeStorageUri as exc:
            raise PermanentStorageError(f"{uri}: {exc}") from exc
        if location.kind == "file":
            raise PermanentStorageError(f"{uri}: file:// URIs need STORAGE_BACKEND=local")
        return location.bucket or self.buckets[kind], location.key

    def download(
        self, uri: str, kind: StorageKind, dest: Path, *, max_bytes: int | None = None
    ) -> int:
        """Download the object and check size and MD5/CRC32C against its metadata.

        With ``max_bytes``, the size in the object's metadata is checked first, and the download
        asks for at most ``max_bytes + 1`` bytes (a range), so an object replaced by a larger one
        in between costs no more (its size or digest then mismatches: a transient error).
        """
        bucket, key = self.locate(uri, kind)
        with _sorted_errors(uri):
            blob = self.client.bucket(bucket).get_blob(key, retry=None)
            if blob is None:
                raise PermanentStorageError(f"{uri}: no such object (gs://{bucket}/{key})")
            if max_bytes is not None and blob.size is not None and int(blob.size) > max_bytes:
                raise ObjectTooLarge(uri, int(blob.size), max_bytes)
            bounded = {} if max_bytes is None else {"start": 0, "end": max_bytes}
            blob.download_to_filename(str(dest), checksum=None, retry=None, **bounded)
        size = dest.stat().st_size
        if max_bytes is not None and size > max_bytes:  # the store gave no size beforehand
            raise ObjectTooLarge(uri, size, max_bytes)
        if blob.size is not None and size != int(blob.size):
            raise TransientStorageError(f"{uri}: downloaded {size} bytes of {blob.size}")
        _check_digest(uri, dest, md5=blob.md5_hash, crc32c=blob.crc32c)
        return size

    def upload_new(self, source: Path, uri: str, kind: StorageKind) -> bool:
        """Upload unless the object exists (generation precondition 0)."""
        bucket, key = self.locate(uri, kind)
        blob = self.client.bucket(bucket).blob(key)
        try:
            with _sorted_errors(uri):
                blob.upload_from_filename(
                    str(source),
                    content_type=content_type(key),
                    if_generation_match=0,
                    retry=None,
                )
        except PermanentStorageError as exc:
            if isinstance(exc.__cause__, api.PreconditionFailed):
                return False
            raise
        return True

    def read_bytes(self, uri: str, kind: StorageKind, limit: int) -> bytes:
        """The object's bytes, at most ``limit + 1`` of them (so the caller sees it is too big)."""
        bucket, key = self.locate(uri, kind)
        with _sorted_errors(uri):
            data: bytes = (
                self.client.bucket(bucket)
                .blob(key)
                .download_as_bytes(start=0, end=limit, retry=None)
            )
        return data


@contextmanager
def _sorted_errors(uri: str) -> Iterator[None]:
    """Re-raise client errors as transient or permanent storage errors, naming the URI."""
    try:
        yield
    except (TransientStorageError, PermanentStorageError):
        raise
    except (api.PreconditionFailed, *_PERMANENT) as error:
        message = f"{uri}: {error.code} {error.message}".strip()
        raise PermanentStorageError(message) from error
    except _TRANSIENT as error:
        raise TransientStorageError(f"{uri}: {error}") from error


def _check_digest(uri: str, path: Path, *, md5: str | None, crc32c: str | None) -> None:
    if md5:
        digest = hashlib.md5()  # noqa: S324 - integrity check against GCS's md5Hash, not security
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1024 * 1024), b""):
                digest.update(block)
        if base64.b64encode(digest.digest()).decode() != md5:
            raise TransientStorageError(f"{uri}: MD5 of the download does not match the object's")
    elif crc32c:
        checksum = google_crc32c.Checksum()  # type: ignore[no-untyped-call]
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1024 * 1024), b""):
                checksum.update(block)  # type: ignore[no-untyped-call]
        if base64.b64encode(checksum.digest()).decode() != crc32c:  # type: ignore[no-untyped-call]
            raise TransientStorageError(f"{uri}: CRC32C of the download does not match")


CONTENT_TYPES: Mapping[str, str] = {
    ".mp4": "video/mp4",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
}
"""What the job uploads: videos and their renditions, the practice page (served as a page) and
the sync report."""


def content_type(key: str) -> str:
    """The Content-Type an uploaded object is served with, by its name's suffix."""
    return CONTENT_TYPES.get(Path(key).suffix.lower(), "application/octet-stream")
