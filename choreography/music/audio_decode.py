"""Decode an untrusted song file into mono float32 samples at the analysis rate, within limits.

Two decoders, and never librosa's audioread fallback (it runs FFmpeg with no restriction, so a
song that is an HLS playlist would make it read other local files):

- libsndfile (``soundfile``) for the formats it reads itself: WAV, FLAC, Ogg (Vorbis, Opus),
  AIFF and MP3. It opens no file but the one it is given.
- FFmpeg for the rest (M4A/AAC, WebM, ...): probed with the ``file`` protocol and the songs'
  demuxer allow-list only, then decoded with the demuxer found forced
  (:mod:`schemas.media_formats`). Another format is refused naming it.

Both stream: blocks at the file's own rate are mixed to mono and resampled (soxr at the HQ
quality ``librosa.load`` uses) into one float32 array, so memory is that array (4 bytes a sample,
5.3 MB a minute at 22050 Hz) and a block, whatever the file holds. The duration is checked from
the header (libsndfile) or the probe (FFmpeg) before decoding, and again while decoding: a file
whose header lies stops at the limit.
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
import threading
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from schemas.errors import InvalidInput
from schemas.media_formats import (
    AUDIO_DEMUXERS,
    UnsupportedMediaFormat,
    choose_demuxer,
    forced_input,
    probe_input,
    refused_format,
)
from schemas.song_limits import DURATION_SETTING, SongTooLong

Samples = npt.NDArray[np.float32]

SOUNDFILE_FORMATS = frozenset({"WAV", "WAVEX", "FLAC", "OGG", "AIFF", "MP3"})
"""libsndfile's major formats decoded without FFmpeg."""
BLOCK_FRAMES = 1 << 16
"""Frames read (and resampled) at a time: 1.5 s at 44.1 kHz."""
DECODE_TIMEOUT_S = 600.0
STDERR_TAIL_CHARS = 1000


def decode_song(
    path: Path, *, sample_rate: int, max_seconds: float, timeout_s: float = DECODE_TIMEOUT_S
) -> Samples:
    """Mono float32 samples at ``sample_rate``; ``InvalidInput`` (``SongTooLong``,
    ``UnsupportedMediaFormat``) naming the file when it cannot or may not be decoded."""
    import soundfile  # noqa: PLC0415 - heavy; keeps importing the analysis model cheap

    info = _soundfile_info(path)
    if info is not None:
        declared = float(info.frames) / info.samplerate
        _check_duration(path, declared, max_seconds, "its header says")
        try:
            with closing(_soundfile_blocks(path)) as blocks:
                return _collect(
                    blocks, path, int(info.samplerate), sample_rate, max_seconds,
                    expected_s=declared,
                )  # fmt: skip
        except (RuntimeError, soundfile.SoundFileError) as exc:
            raise InvalidInput(f"song file {path.name} cannot be decoded as audio: {exc}") from exc
    demuxer, rate, duration = _probe(path, timeout_s)
    _check_duration(path, duration, max_seconds, "ffprobe says")
    with _ffmpeg_blocks(path, demuxer, rate, max_seconds, timeout_s) as blocks:
        return _collect(blocks, path, rate, sample_rate, max_seconds, expected_s=duration)


def _check_duration(path: Path, seconds: float, max_seconds: float, source: str) -> None:
    if seconds > max_seconds:
        raise SongTooLong(
            f"song file {path.name} is {seconds:.1f} s long ({source}), over "
            f"{DURATION_SETTING}={max_seconds:g}"
        )


def _soundfile_info(path: Path) -> Any:
    """libsndfile's view of the file when it is in one of ``SOUNDFILE_FORMATS``, else None."""
    import soundfile  # noqa: PLC0415 - heavy; keeps importing the analysis model cheap

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.SoundFileError):  # LibsndfileError: not a format it reads
        return None
    if info.format not in SOUNDFILE_FORMATS or info.samplerate <= 0 or info.frames <= 0:
        return None
    return info


def _soundfile_blocks(path: Path) -> Generator[Samples, None, None]:
    import soundfile  # noqa: PLC0415

    with soundfile.SoundFile(str(path)) as sound:
        while True:
            block = sound.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
            if not len(block):
                return
            yield block.mean(axis=1, dtype=np.float32)


def _probe(path: Path, timeout_s: float) -> tuple[str, int, float]:
    """(demuxer, sample rate, duration) from ffprobe, the format detected among the allowed."""
    args = [
        "ffprobe", "-v", "error", "-show_entries",
        "format=format_name,duration:stream=codec_type,sample_rate", "-select_streams", "a:0",
        "-of", "json", *probe_input(f"file:{path}", AUDIO_DEMUXERS),
    ]  # fmt: skip
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InvalidInput(f"song file {path.name} cannot be probed: {exc}") from exc
    detected = refused_format(done.stderr)
    if detected is not None:
        raise UnsupportedMediaFormat(f"song file {path.name}", detected, AUDIO_DEMUXERS)
    if done.returncode != 0:
        reason = done.stderr.strip()[-STDERR_TAIL_CHARS:] or f"ffprobe exited {done.returncode}"
        raise InvalidInput(f"song file {path.name} cannot be decoded as audio: {reason}")
    info = json.loads(done.stdout or "{}")
    fmt = info.get("format", {})
    demuxer = choose_demuxer(str(fmt.get("format_name") or ""), AUDIO_DEMUXERS,
                             what=f"song file {path.name}")  # fmt: skip
    streams = info.get("streams") or [{}]
    try:
        rate = int(streams[0].get("sample_rate") or 0)
        duration = float(fmt.get("duration") or 0)
    except (TypeError, ValueError):
        rate, duration = 0, 0.0
    if rate <= 0:
        raise InvalidInput(f"song file {path.name} has no audio stream")
    return demuxer, rate, duration


@contextmanager
def _ffmpeg_blocks(
    path: Path, demuxer: str, rate: int, max_seconds: float, timeout_s: float
) -> Iterator[Iterator[Samples]]:
    """FFmpeg decoding the first audio stream to mono f32le at ``rate`` on a pipe, in blocks;
    killed on leaving (a refusal mid-file) or after ``timeout_s``."""
    args = [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
        *forced_input(f"file:{path}", demuxer),
        "-map", "0:a:0", "-vn", "-sn", "-dn", "-t", f"{max_seconds + 1:.3f}",
        "-ac", "1", "-ar", str(rate), "-c:a", "pcm_f32le", "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    with tempfile.TemporaryFile() as stderr:
        try:
            process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
            )
        except OSError as exc:
            raise InvalidInput(f"song file {path.name}: cannot start ffmpeg: {exc}") from exc
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            process.kill()

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        try:
            yield _pipe_samples(process, stderr, path, timed_out)
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()


def _pipe_samples(
    process: subprocess.Popen[bytes], stderr: IO[bytes], path: Path, timed_out: threading.Event
) -> Iterator[Samples]:
    """The f32le samples FFmpeg writes, a block at a time; ``InvalidInput`` if it fails."""
    assert process.stdout is not None  # noqa: S101 - set by stdout=PIPE
    carry = b""
    while chunk := process.stdout.read(BLOCK_FRAMES * 4):
        data = carry + chunk
        whole = len(data) - len(data) % 4
        carry = data[whole:]
        yield np.frombuffer(data[:whole], dtype="<f4")
    code = process.wait()
    if code != 0:
        stderr.seek(0)
        tail = stderr.read().decode(errors="replace").strip()[-STDERR_TAIL_CHARS:]
        reason = "ffmpeg timed out" if timed_out.is_set() else tail or f"ffmpeg exited {code}"
        raise InvalidInput(f"song file {path.name} cannot be decoded as audio: {reason}")


def _collect(
    blocks: Iterator[Samples],
    path: Path,
    in_rate: int,
    out_rate: int,
    max_seconds: float,
    *,
    expected_s: float,
) -> Samples:
    """Resample mono blocks into one float32 array; ``SongTooLong`` past ``max_seconds``."""
    import soxr  # noqa: PLC0415 - librosa's resampler

    limit_in = math.floor(max_seconds * in_rate)
    ratio = out_rate / in_rate
    out = _Growing(math.ceil(min(expected_s, max_seconds) * out_rate * 1.01) + out_rate)
    stream = None if in_rate == out_rate else soxr.ResampleStream(
        in_rate, out_rate, 1, dtype="float32", quality="HQ"
    )  # fmt: skip
    seen = 0
    for block in blocks:
        seen += block.size
        if seen > limit_in:
            raise SongTooLong(
                f"song file {path.name} is longer than {DURATION_SETTING}={max_seconds:g} s "
                f"(decoding stopped there; its header said {expected_s:.1f} s)"
            )
        out.append(block if stream is None else stream.resample_chunk(block))
    if stream is not None:
        out.append(stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    return out.result(math.ceil(seen * ratio))


class _Growing:
    """A float32 buffer appended to in place; grows (by half) only when a header understated."""

    def __init__(self, capacity: int) -> None:
        self._data = np.empty(max(capacity, 1), dtype=np.float32)
        self._size = 0

    def append(self, block: npt.ArrayLike) -> None:
        values = np.asarray(block, dtype=np.float32).reshape(-1)
        end = self._size + values.size
        if end > self._data.size:
            grown = np.empty(max(end, self._data.size * 3 // 2), dtype=np.float32)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : end] = values
        self._size = end

    def result(self, length: int) -> Samples:
        """The first ``length`` samples (zero-padded like ``librosa.util.fix_length``)."""
        if length > self._size:
            self.append(np.zeros(length - self._size, dtype=np.float32))
        return self._data[:length]
