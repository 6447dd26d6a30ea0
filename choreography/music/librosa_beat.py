"""``librosa.beat``, imported so that its one uncached numba function is cached like the rest.

librosa 0.11.0 declares ``__beat_local_score`` (``librosa/beat.py``) with
``@numba.guvectorize([two explicit signatures], ..., cache=False)``, while its siblings in the
same file use ``cache=True``. Explicit signatures compile eagerly, so every process that imports
``librosa.beat`` compiled that function again (about 1.7 s of a fresh ``choreo plan``), whatever
``NUMBA_CACHE_DIR`` held. :func:`import_librosa_beat` imports the module while ``numba.guvectorize``
turns ``cache=False`` into ``cache=True`` for that function only; numba then saves and loads it
like its siblings, so ``choreo warmup`` ships it in the image.

numba issue #10128: when several processes compile the same cached gufunc at once, the function
and its ``guf-`` wrapper files can come from different processes, and loading them crashes.
librosa's other gufuncs have the same exposure; the image fills the cache once, sequentially, at
build time (``choreo warmup``), so processes there only read it.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

logger = logging.getLogger(__name__)

BEAT_MODULE = "librosa.beat"
# (module, qualified name) of librosa functions declared with cache=False.
UNCACHED_GUFUNCS = frozenset({(BEAT_MODULE, "__beat_local_score")})
_import_lock = threading.Lock()  # a second caller waits for the first import to finish
_checked: set[str] = set()  # BEAT_MODULE once imported here, or once warned about


def import_librosa_beat() -> ModuleType:
    """The ``librosa.beat`` module, its ``cache=False`` gufuncs made cacheable on first import."""
    with _import_lock:
        if BEAT_MODULE not in _checked:
            if BEAT_MODULE in sys.modules:
                logger.warning(
                    "librosa.beat was imported before import_librosa_beat: its uncached gufuncs "
                    "compiled in this process"
                )
            else:
                _import_with_cached_gufuncs()
            _checked.add(BEAT_MODULE)
    return sys.modules[BEAT_MODULE]


def _import_with_cached_gufuncs() -> None:
    import numba  # noqa: PLC0415 - heavy; imported only when analysing

    original = numba.guvectorize
    numba.guvectorize = _caching(original)
    try:
        import librosa.beat  # noqa: F401, PLC0415
    finally:
        numba.guvectorize = original


def _caching(guvectorize: Callable[..., Any]) -> Callable[..., Any]:
    """``guvectorize`` with ``cache=True`` for the functions in ``UNCACHED_GUFUNCS``."""

    def patched(*args: Any, **kwargs: Any) -> Any:
        decorate = guvectorize(*args, **kwargs)
        if kwargs.get("cache", False) is not False:
            return decorate

        def choose(func: Callable[..., Any]) -> Any:
            if (func.__module__, func.__qualname__) in UNCACHED_GUFUNCS:
                return guvectorize(*args, **(kwargs | {"cache": True}))(func)
            return decorate(func)

        return choose

    return patched
