"""JSON from outside, parsed with limits: every problem is one :class:`JsonRejected`.

``json.loads`` alone lets through what PostgreSQL, pydantic or Python itself later refuse with an
unrelated error: ``NaN`` and ``Infinity`` (not JSON), numbers too large for any field (an integer
of over 4,300 digits even raises a bare ``ValueError`` from ``int``), nesting deep enough for a
``RecursionError``, the NUL character (PostgreSQL text cannot hold it: error 22P05) and lone
UTF-16 surrogates (not encodable as UTF-8). :func:`loads_strict` refuses each of them up front and
names where in the document it is.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from schemas.text import visible

MAX_JSON_DEPTH = 64
"""Containers nested deeper than this are refused; choreo's documents nest at most 8 levels."""
MAX_JSON_INTEGER = 2**63 - 1
"""Integers beyond a signed 64-bit value fit no field (PostgreSQL ``bigint`` is the widest)."""
_MAX_INTEGER_DIGITS = len(str(MAX_JSON_INTEGER))
# NUL and lone surrogates: no choreo field can store or encode them.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class JsonRejected(ValueError):
    """JSON text that does not parse or breaks a limit; ``path`` says where (``""``: the whole)."""

    def __init__(self, message: str, path: str = "") -> None:
        path = visible(path)  # keys may hold control characters; messages must not
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.problem = message


def loads_strict(raw: bytes | str) -> Any:
    """Parse ``raw`` as JSON within the limits above; ``JsonRejected`` names the problem."""
    try:
        data = json.loads(raw, parse_constant=float, parse_int=_integer)
    except json.JSONDecodeError as exc:
        raise JsonRejected(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError:
        raise JsonRejected("not valid UTF-8 text") from None
    except RecursionError:
        raise JsonRejected(f"nested more than {MAX_JSON_DEPTH} levels deep") from None
    check_tree(data)
    return data


def check_tree(data: Any) -> None:
    """Check nesting depth and every string (keys included) of an already parsed value."""
    stack: list[tuple[Any, int, str]] = [(data, 0, "")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, str):
            _check_string(value, path)
        elif isinstance(value, _OutOfRange):
            raise JsonRejected(
                f"integer {value.shown} is out of range (at most 2**63-1 in size)", path
            )
        elif isinstance(value, float) and not math.isfinite(value):
            raise JsonRejected(
                f"{value} is not a finite number (NaN and Infinity are not JSON)", path
            )
        elif isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise JsonRejected(f"nested more than {MAX_JSON_DEPTH} levels deep", path)
            if isinstance(value, dict):
                for key, item in value.items():
                    where = f"{path}.{key}" if path else str(key)
                    _check_string(str(key), where, is_key=True)
                    stack.append((item, depth + 1, where))
            else:
                stack.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(value))


def _check_string(value: str, path: str, *, is_key: bool = False) -> None:
    found = _UNSTORABLE.search(value)
    if found is None:
        return
    char = found.group()
    what = (
        "the control character NUL (U+0000)"
        if char == "\x00"
        else f"a lone surrogate U+{ord(char):04X}"
    )
    where = "key" if is_key else "text"
    raise JsonRejected(f"{where} contains {what} at position {found.start()}", path)


class _OutOfRange:
    """An integer too large to keep, held as text until :func:`check_tree` reports its path."""

    def __init__(self, text: str) -> None:
        digits = text.lstrip("-")
        self.shown = text if len(text) <= 24 else f"{text[:12]}... ({len(digits)} digits)"


def _integer(text: str) -> int | _OutOfRange:
    # Checked on the text first: int() of over 4,300 digits raises a bare ValueError.
    if len(text.lstrip("-")) > _MAX_INTEGER_DIGITS or abs(int(text)) > MAX_JSON_INTEGER:
        return _OutOfRange(text)
    return int(text)
