"""Storage URIs that are safe to fetch from or write to.

Three forms are allowed:

- a relative storage key, ``moves/hiphop/bounce.mp4``: an object key in the bucket for its kind
  (songs, moves, videos; see ``StorageSettings``) or a file under the local storage root;
- ``gs://bucket/key``: an object in Cloud Storage, optionally only in allowed buckets;
- ``file:///absolute/path`` (or ``file://localhost/...``): only inside a configured storage root.

Everything else is rejected: other schemes, ``..`` and ``.`` segments, absolute paths, empty
segments, any percent-encoding (``%2e%2e``, ``%2f``, double encoding ``%252e``), backslashes,
control characters, ``~`` home prefixes, drive letters, query strings and fragments.
:func:`parse_storage_uri` is lexical and pure; :func:`resolve_in_root` touches the filesystem to
follow symlinks, so a link inside the root that points outside it is rejected too.
The job's storage code uses both before it opens anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

MAX_URI_LENGTH = 1024
"""Cloud Storage object names are at most 1024 bytes; a URI longer than that is not ours."""

ALLOWED_SCHEMES = frozenset({"gs", "file"})

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# Cloud Storage bucket names: 3-63 characters, lowercase letters, digits, dashes, underscores
# and dots, starting and ending with a letter or digit.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
# A Windows drive (``C:``, ``c:/``): not a scheme, and never a storage key.
_DRIVE = re.compile(r"^[A-Za-z]:(?:$|[^/]|/(?!/))")
# C0 and C1 control characters and lone surrogates (which cannot even be encoded as UTF-8).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

StorageKind = Literal["key", "gs", "file"]


class UnsafeStorageUri(ValueError):
    """A URI outside the allowed forms; the message says why, without the field name."""


@dataclass(frozen=True)
class StorageLocation:
    """A checked storage URI, split into its parts."""

    uri: str
    kind: StorageKind
    key: str
    """The object key (``key`` and ``gs``) or the absolute local path (``file``)."""
    bucket: str | None = None


def parse_storage_uri(
    uri: str, *, allowed_buckets: frozenset[str] | None = None
) -> StorageLocation:
    """Check a URI lexically (no filesystem access) and split it; raise ``UnsafeStorageUri``."""
    _check_characters(uri)
    if _DRIVE.match(uri):
        raise UnsafeStorageUri(f"drive letters ({uri[:2]!r}) are not allowed; use a storage key")
    scheme_match = _SCHEME.match(uri)
    if scheme_match is None:
        if uri.startswith("/"):
            raise UnsafeStorageUri("absolute paths are not allowed; use a relative storage key")
        _check_segments(uri)
        return StorageLocation(uri=uri, kind="key", key=uri)
    scheme = scheme_match.group(1).lower()
    if scheme not in ALLOWED_SCHEMES:
        raise UnsafeStorageUri(
            f"scheme {scheme!r} is not allowed (use a relative storage key, gs:// or file://)"
        )
    rest = uri[len(scheme_match.group(0)) :]
    if not rest.startswith("//"):
        raise UnsafeStorageUri(f"{scheme}: URIs must start with {scheme}://")
    authority, slash, path = rest[2:].partition("/")
    if scheme == "gs":
        return _gs_location(uri, authority, path, allowed_buckets)
    if authority not in ("", "localhost"):
        raise UnsafeStorageUri(f"file:// URIs must not name a host (got {authority!r})")
    if not slash:
        raise UnsafeStorageUri("file:// URI has no path")
    _check_segments(path)
    return StorageLocation(uri=uri, kind="file", key="/" + path)


def resolve_in_root(location: StorageLocation, storage_root: Path) -> Path:
    """Resolve a ``key`` or ``file`` location under ``storage_root``, following symlinks.

    Raises ``UnsafeStorageUri`` when the resolved path is outside the resolved root, which
    catches symlinks pointing out of the root as well as ``file://`` paths elsewhere.
    """
    if location.kind == "gs":
        raise UnsafeStorageUri("gs:// URIs have no local path")
    root = storage_root.resolve()
    candidate = Path(location.key) if location.kind == "file" else root / location.key
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root):
        raise UnsafeStorageUri("path escapes the storage root")
    return resolved


def check_storage_uri(
    uri: str,
    *,
    storage_root: Path | None = None,
    allowed_buckets: frozenset[str] | None = None,
) -> StorageLocation:
    """Apply every URI rule: lexical checks, then the storage root (symlinks included)."""
    location = parse_storage_uri(uri, allowed_buckets=allowed_buckets)
    if location.kind == "file" and storage_root is None:
        raise UnsafeStorageUri("file:// URIs are only allowed inside a configured storage root")
    if storage_root is not None and location.kind != "gs":
        resolve_in_root(location, storage_root)
    return location


def _check_characters(uri: str) -> None:
    if not uri:
        raise UnsafeStorageUri("URI is empty")
    found = _UNPRINTABLE.search(uri)
    if found is not None:
        code = ord(found.group())
        if 0xD800 <= code <= 0xDFFF:
            raise UnsafeStorageUri(f"lone surrogates (U+{code:04X}) are not allowed")
        raise UnsafeStorageUri(f"control characters (U+{code:04X}, including NUL) are not allowed")
    if len(uri.encode("utf-8")) > MAX_URI_LENGTH:
        raise UnsafeStorageUri(f"URI is longer than {MAX_URI_LENGTH} bytes")
    if "\\" in uri:
        raise UnsafeStorageUri("backslashes are not allowed")
    if "?" in uri or "#" in uri:
        raise UnsafeStorageUri("query strings and fragments are not allowed")
    if "%" in uri:
        raise UnsafeStorageUri(_percent_message(uri))
    if uri != uri.strip():
        raise UnsafeStorageUri("leading or trailing whitespace is not allowed")


def _percent_message(uri: str) -> str:
    # Decode repeatedly so double encoding (%252e -> %2e -> .) shows what it would become.
    decoded = uri
    for _ in range(4):
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
    if decoded == uri:
        return "percent signs are not allowed in storage URIs"
    segments = re.split(r"[/\\]", decoded)
    if ".." in segments or decoded.count("/") > uri.count("/") or "\\" in decoded:
        return f"percent-encoded path traversal is not allowed (decodes to {decoded!r})"
    return f"percent-encoding is not allowed (decodes to {decoded!r})"


def _check_segments(path: str) -> None:
    if not path:
        raise UnsafeStorageUri("path is empty")
    for segment in path.split("/"):
        if segment == "":
            raise UnsafeStorageUri("empty path segments ('//' or a trailing '/') are not allowed")
        if segment in (".", ".."):
            raise UnsafeStorageUri(f"{segment!r} path segments are not allowed")
        if segment.startswith("~"):
            raise UnsafeStorageUri(f"home-directory prefixes ({segment!r}) are not allowed")


def _gs_location(
    uri: str, bucket: str, key: str, allowed_buckets: frozenset[str] | None
) -> StorageLocation:
    if not _BUCKET.match(bucket):
        raise UnsafeStorageUri(f"{bucket!r} is not a valid bucket name")
    if allowed_buckets is not None and bucket not in allowed_buckets:
        allowed = ", ".join(sorted(allowed_buckets)) or "none"
        raise UnsafeStorageUri(f"bucket {bucket!r} is not allowed (allowed: {allowed})")
    _check_segments(key)
    return StorageLocation(uri=uri, kind="gs", key=key, bucket=bucket)
