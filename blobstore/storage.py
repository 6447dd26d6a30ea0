"""Where songs, clips, blueprints and videos live: one Protocol, a local-directory adapter.

Adapters raise :class:`TransientStorageError` (worth retrying: timeouts, 5xx, a short or
corrupted download) or :class:`PermanentStorageError` (404, 403, an unsafe path);
:func:`with_retries` is the one retry policy. The job's parallel input fetch is
:func:`job.fetch.fetch_inputs`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol, TypeVar

import backoff

from schemas.errors import PermanentError, TransientError
from schemas.storage_uri import UnsafeStorageUri, parse_storage_uri, resolve_in_root

log = logging.getLogger(__name__)

StorageKind = Literal["songs", "moves", "videos", "blueprints"]
"""Which bucket a relative storage key belongs to (local storage ignores it)."""

T = TypeVar("T")


class TransientStorageError(TransientError):
    """The store failed in a way that may pass on the next try."""


class PermanentStorageError(PermanentError):
    """The store refused for good: the object is missing, forbidden, or the URI unusable."""


class ObjectTooLarge(PermanentStorageError):
    """The object is larger than the caller's ``max_bytes``; nothing was downloaded."""

    def __init__(self, uri: str, size: int, limit: int) -> None:
        super().__init__(f"{uri}: {size} bytes, over the limit of {limit}")
        self.size, self.limit = size, limit


class Storage(Protocol):
    """Object storage as the job needs it."""

    def download(
        self, uri: str, kind: StorageKind, dest: Path, *, max_bytes: int | None = None
    ) -> int:
        """Copy the object to ``dest`` and verify it (size, checksum); return its size.

        With ``max_bytes``, an object the store says is larger raises ``ObjectTooLarge`` before
        any byte is copied, and no more than ``max_bytes + 1`` bytes are ever transferred.
        """
        ...

    def upload_new(self, source: Path, uri: str, kind: StorageKind) -> bool:
        """Store ``source`` at ``uri`` unless an object is there; False when one already was."""
        ...


class LocalStorage:
    """Files under one root directory; every path is re-resolved right before it is opened."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, uri: str) -> Path:
        """The resolved local path of ``uri``, inside the root (symlinks followed)."""
        try:
            location = parse_storage_uri(uri)
            if location.kind == "gs":
                raise UnsafeStorageUri("gs:// URIs need STORAGE_BACKEND=gcs")
            return resolve_in_root(location, self.root)
        except UnsafeStorageUri as exc:
            raise PermanentStorageError(f"{uri}: {exc}") from exc

    def download(
        self, uri: str, kind: StorageKind, dest: Path, *, max_bytes: int | None = None
    ) -> int:
        """Copy the file at ``uri`` to ``dest``; check the copy's size against the source's."""
        source = self.path(uri)
        try:
            with source.open("rb") as reader:
                expected = os.fstat(reader.fileno()).st_size
                if max_bytes is not None and expected > max_bytes:
                    raise ObjectTooLarge(uri, expected, max_bytes)
                with dest.open("wb") as writer:
                    _copy(reader, writer, None if max_bytes is None else max_bytes + 1)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise PermanentStorageError(f"{uri}: no such file under the storage root") from exc
        except PermissionError as exc:
            raise PermanentStorageError(f"{uri}: permission denied") from exc
        except OSError as exc:
            raise TransientStorageError(f"{uri}: {exc.strerror or exc}") from exc
        size = dest.stat().st_size
        if size != expected:
            raise TransientStorageError(f"{uri}: copied {size} bytes of {expected}")
        return size

    def upload_new(self, source: Path, uri: str, kind: StorageKind) -> bool:
        """Link a complete temporary copy into place; an existing file is never replaced."""
        target = self.path(uri)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.path(uri)  # the directories just made must not have moved the target out
            handle, name = tempfile.mkstemp(prefix=".upload-", dir=target.parent)
            os.close(handle)
            temporary = Path(name)
            try:
                shutil.copyfile(source, temporary)
                os.link(temporary, target)
            except FileExistsError:
                return False
            finally:
                temporary.unlink(missing_ok=True)
        except PermissionError as exc:
            raise PermanentStorageError(f"{uri}: permission denied") from exc
        except OSError as exc:
            raise TransientStorageError(f"{uri}: {exc.strerror or exc}") from exc
        return True


def _copy(reader: BinaryIO, writer: BinaryIO, limit: int | None) -> None:
    """Copy in 1 MiB blocks, at most ``limit`` bytes (a file growing while copied stops there)."""
    left = limit
    while left is None or left > 0:
        block = reader.read(1024 * 1024 if left is None else min(left, 1024 * 1024))
        if not block:
            return
        writer.write(block)
        left = None if left is None else left - len(block)


def with_retries(call: Callable[[], T], *, what: str, retries: int, base_delay_s: float = 0.5) -> T:
    """Run ``call``, retrying ``TransientStorageError`` up to ``retries`` times (exponential)."""

    def note(details: Any) -> None:
        log.warning(
            "storage error, retrying",
            extra={"step": "storage", "what": what, "attempt": details["tries"],
                   "wait_s": round(details.get("wait", 0.0), 3)},
        )  # fmt: skip

    retrying = backoff.on_exception(
        backoff.expo,
        TransientStorageError,
        max_tries=retries + 1,
        factor=base_delay_s,
        max_value=10,
        jitter=backoff.full_jitter,
        on_backoff=note,
        logger=None,
    )(call)
    return retrying()


def local_name(uri: str, kind: StorageKind) -> str:
    """A file name for a download: its kind and a hash of the URI, never the URI's extension.

    FFmpeg guesses some formats from a name (``.m3u8`` playlists, ``.ffconcat`` lists, image
    sequences); a downloaded file's format is found by probing its bytes instead.
    """
    return f"{kind}-{hashlib.sha256(uri.encode()).hexdigest()[:24]}"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()
