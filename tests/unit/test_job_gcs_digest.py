"""Downloads from GCS are checked against the object's MD5 (or CRC32C when it has no MD5).

The GCS emulator reports neither, so the integration tests never reach this check; the digests
here are the values GCS publishes (base64 of the big-endian digest), computed independently.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import google_crc32c
import pytest

from blobstore.gcs import _check_digest, content_type
from blobstore.storage import TransientStorageError

DATA = b"choreo clip bytes\n" * 4096


@pytest.fixture
def download(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(DATA)
    return path


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - GCS's md5Hash


def _crc32c(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def test_matching_digests_pass(download: Path) -> None:
    """The object's MD5, or its CRC32C when GCS gives no MD5 (composite objects), matches."""
    _check_digest("gs://b/clip.mp4", download, md5=_md5(DATA), crc32c=_crc32c(DATA))
    _check_digest("gs://b/clip.mp4", download, md5=None, crc32c=_crc32c(DATA))
    _check_digest("gs://b/clip.mp4", download, md5=None, crc32c=None)  # nothing to check


@pytest.mark.parametrize("which", ["md5", "crc32c"])
def test_a_corrupted_download_is_a_transient_error_naming_the_object(
    download: Path, which: str
) -> None:
    """One flipped byte: the digest differs, so the download is retried (transient)."""
    damaged = bytearray(DATA)
    damaged[100] ^= 0x01
    digests = {"md5": _md5(bytes(damaged)) if which == "md5" else None,
               "crc32c": _crc32c(bytes(damaged))}  # fmt: skip
    with pytest.raises(TransientStorageError, match=r"gs://b/clip.mp4: (MD5|CRC32C)"):
        _check_digest("gs://b/clip.mp4", download, **digests)


def test_uploads_are_served_with_the_content_type_of_their_name() -> None:
    """A video and its renditions as video/mp4, the practice page as an HTML page."""
    assert content_type("videos/t-slow050.mp4") == "video/mp4"
    assert content_type("videos/t.html") == "text/html; charset=utf-8"
    assert content_type("videos/t.bin") == "application/octet-stream"
