"""Storage URI rules: the allowed forms, every rejected form, and the storage root checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.storage_uri import (
    MAX_URI_LENGTH,
    StorageLocation,
    UnsafeStorageUri,
    check_storage_uri,
    parse_storage_uri,
    resolve_in_root,
)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "moves/hiphop/bounce.mp4",
            StorageLocation("moves/hiphop/bounce.mp4", "key", "moves/hiphop/bounce.mp4"),
        ),
        ("song.mp3", StorageLocation("song.mp3", "key", "song.mp3")),
        (
            "gs://choreo-moves/hiphop/bounce.mp4",
            StorageLocation(
                "gs://choreo-moves/hiphop/bounce.mp4", "gs", "hiphop/bounce.mp4", "choreo-moves"
            ),
        ),
        (
            "file:///srv/storage/a.mp4",
            StorageLocation("file:///srv/storage/a.mp4", "file", "/srv/storage/a.mp4"),
        ),
        (
            "file://localhost/srv/a.mp4",
            StorageLocation("file://localhost/srv/a.mp4", "file", "/srv/a.mp4"),
        ),
        (
            "moves/with space/..bounce..mp4",
            StorageLocation(
                "moves/with space/..bounce..mp4", "key", "moves/with space/..bounce..mp4"
            ),
        ),
    ],
)
def test_allowed_forms_are_split_into_their_parts(uri: str, expected: StorageLocation) -> None:
    """Relative keys, gs:// and file:// URIs parse into kind, bucket and key."""
    assert parse_storage_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("", "empty"),
        ("../etc/passwd", "'..' path segments"),
        ("moves/../../etc/passwd", "'..' path segments"),
        ("moves/./bounce.mp4", "'.' path segments"),
        ("/etc/passwd", "absolute paths"),
        ("%2e%2e/%2e%2e/etc/passwd", "percent-encoded path traversal"),
        ("%2E%2E/etc", "percent-encoded path traversal"),
        ("%252e%252e/etc/passwd", "percent-encoded path traversal"),
        ("moves/..%2f..%2fetc/passwd", "percent-encoded path traversal"),
        ("moves%2fbounce.mp4", "percent-encoded path traversal"),
        ("moves/bounce%20copy.mp4", "percent-encoding is not allowed"),
        ("moves/100%.mp4", "percent signs"),
        ("..\\..\\windows\\system32", "backslashes"),
        ("moves/bounce.mp4\x00.txt", "control characters"),
        ("moves/bounce\n.mp4", "control characters"),
        ("moves//bounce.mp4", "empty path segments"),
        ("moves/", "empty path segments"),
        ("moves/bounce.mp4?x=1", "query strings"),
        ("moves/bounce.mp4#t=1", "fragments"),
        (" moves/bounce.mp4", "whitespace"),
        ("http://example.com/a.mp4", "scheme 'http'"),
        ("https://example.com/a.mp4", "scheme 'https'"),
        ("ftp://example.com/a.mp4", "scheme 'ftp'"),
        ("data:video/mp4;base64,AAAA", "scheme 'data'"),
        ("C:/Windows/a.mp4", "drive letters ('C:')"),
        ("gs:bucket/key", "must start with gs://"),
        ("gs://Bad_Bucket/key", "not a valid bucket name"),
        ("gs://choreo-moves", "path is empty"),
        ("gs://choreo-moves/", "path is empty"),
        ("gs://choreo-moves/../x", "'..' path segments"),
        ("file://etc/passwd", "must not name a host"),
        ("file:///etc/../passwd", "'..' path segments"),
        ("moves/" + "a" * MAX_URI_LENGTH, "longer than"),
    ],
)
def test_unsafe_forms_are_rejected_with_a_reason(uri: str, reason: str) -> None:
    """Every unsafe form raises UnsafeStorageUri whose message says what is wrong."""
    with pytest.raises(UnsafeStorageUri) as caught:
        parse_storage_uri(uri)
    assert reason in str(caught.value)


def test_buckets_can_be_restricted() -> None:
    """With allowed_buckets, gs:// URIs in any other bucket are rejected."""
    allowed = frozenset({"choreo-moves"})
    assert (
        parse_storage_uri("gs://choreo-moves/a.mp4", allowed_buckets=allowed).bucket
        == "choreo-moves"
    )
    with pytest.raises(UnsafeStorageUri, match="bucket 'other-bucket' is not allowed"):
        parse_storage_uri("gs://other-bucket/a.mp4", allowed_buckets=allowed)


def test_file_uris_need_a_storage_root() -> None:
    """Without a storage root, file:// URIs are rejected even when lexically clean."""
    with pytest.raises(UnsafeStorageUri, match="only allowed inside a configured storage root"):
        check_storage_uri("file:///srv/storage/a.mp4")


def test_file_uri_inside_the_root_resolves(tmp_path: Path) -> None:
    """A file:// URI under the storage root is accepted and resolves to that file."""
    root = tmp_path / "storage"
    (root / "moves").mkdir(parents=True)
    clip = root / "moves" / "a.mp4"
    clip.write_bytes(b"x")
    location = check_storage_uri(clip.as_uri(), storage_root=root)
    assert resolve_in_root(location, root) == clip.resolve()


def test_file_uri_outside_the_root_is_rejected(tmp_path: Path) -> None:
    """A file:// URI elsewhere on the machine escapes the root."""
    with pytest.raises(UnsafeStorageUri, match="path escapes the storage root"):
        check_storage_uri("file:///etc/passwd", storage_root=tmp_path)


def test_symlink_escaping_the_root_is_rejected(tmp_path: Path) -> None:
    """A relative key through a symlink that points outside the root is rejected."""
    root, outside = tmp_path / "storage", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"x")
    (root / "moves").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeStorageUri, match="path escapes the storage root"):
        check_storage_uri("moves/secret.mp4", storage_root=root)


def test_symlink_inside_the_root_is_allowed(tmp_path: Path) -> None:
    """A symlink whose target stays inside the root is fine."""
    root = tmp_path / "storage"
    (root / "real").mkdir(parents=True)
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    location = check_storage_uri("alias/a.mp4", storage_root=root)
    assert resolve_in_root(location, root) == (root / "real" / "a.mp4").resolve()


def test_gs_locations_have_no_local_path(tmp_path: Path) -> None:
    """resolve_in_root refuses gs:// locations instead of inventing a path."""
    location = parse_storage_uri("gs://choreo-moves/a.mp4")
    with pytest.raises(UnsafeStorageUri, match="no local path"):
        resolve_in_root(location, tmp_path)
