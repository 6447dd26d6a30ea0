"""Free text from outside: control characters refused by name, or made visible when stored.

Descriptions, client names and failure reasons are shown in terminals, logs and web pages, and
stored in PostgreSQL (which cannot hold NUL). A C0 or C1 control character (other than tab and
newline in multi-line text) or a lone surrogate is never meant; :func:`check_text` refuses it with
its code point and position, for the field validators of :mod:`schemas.events`. Text choreo writes
itself from error messages (a failure reason quoting FFmpeg) goes through :func:`visible` instead.
"""

from __future__ import annotations

import re

_SINGLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_MULTI_LINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_NAMES = {0: "NUL", 9: "TAB", 10: "LF", 13: "CR", 27: "ESC", 127: "DEL"}


class UnsafeText(ValueError):
    """Text holding a character no field may hold; the message names it and its position."""


def check_text(value: str, *, multiline: bool = False) -> str:
    """``value`` unchanged, or ``UnsafeText`` naming the first forbidden character."""
    found = (_MULTI_LINE if multiline else _SINGLE_LINE).search(value)
    if found is None:
        return value
    code = ord(found.group())
    kind = "a lone surrogate" if 0xD800 <= code <= 0xDFFF else "the control character"
    name = _NAMES.get(code)
    label = f"{name} (U+{code:04X})" if name else f"U+{code:04X}"
    raise UnsafeText(f"contains {kind} {label} at position {found.start()}")


def visible(value: str) -> str:
    """``value`` with forbidden characters written as ``\\xNN``/``\\uNNNN`` escapes."""
    return _MULTI_LINE.sub(lambda m: repr(m.group())[1:-1], value)
