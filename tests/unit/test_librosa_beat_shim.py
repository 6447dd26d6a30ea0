"""The guvectorize wrapper that makes librosa's cache=False gufuncs cacheable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from choreography.music.librosa_beat import UNCACHED_GUFUNCS, _caching


def _recording_guvectorize(calls: list[dict[str, Any]]) -> Callable[..., Any]:
    def guvectorize(*args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        def decorate(func: Any) -> Any:
            calls.append({"func": func.__qualname__, "cache": kwargs.get("cache")})
            return func

        return decorate

    return guvectorize


def _function(module: str, qualname: str) -> Callable[[], None]:
    def func() -> None:
        return None

    func.__module__ = module
    func.__qualname__ = qualname
    return func


def test_listed_uncached_gufunc_is_declared_with_cache_true() -> None:
    """librosa.beat's __beat_local_score, declared cache=False, reaches numba with cache=True."""
    calls: list[dict[str, Any]] = []
    ((module, name),) = UNCACHED_GUFUNCS
    _caching(_recording_guvectorize(calls))(["void(f8[:])"], "(n)", cache=False)(
        _function(module, name)
    )
    assert calls == [{"func": name, "cache": True}]


def test_other_gufuncs_keep_their_declared_cache_flag() -> None:
    """Functions not listed keep cache=False or cache=True exactly as declared."""
    calls: list[dict[str, Any]] = []
    patched = _caching(_recording_guvectorize(calls))
    patched(["void(f8[:])"], "(n)", cache=False)(_function("librosa.beat", "other"))
    patched(["void(f8[:])"], "(n)", cache=True)(_function("librosa.beat", "__beat_track_dp"))
    assert calls == [
        {"func": "other", "cache": False},
        {"func": "__beat_track_dp", "cache": True},
    ]
