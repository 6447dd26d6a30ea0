"""CloudEvents 1.0 decoding rules, and the bridge to the ``cloudevents`` SDK.

The rules of the core spec (attribute names, the type system, the required and optional
attributes), of the JSON event format and of the HTTP binding are checked here, strictly: the SDK
accepts times without seconds, any ``datacontenttype`` string, unvalidated base64, and rejects
valid events whose optional attributes are JSON ``null``. The SDK still builds the event (a last
check of its own rules) and does the encoding.

The SDK fills in a missing ``id`` (a new UUID) and ``time`` (now) when it builds an event. That
is right for producing and wrong for decoding: a message without an id would get a fresh
idempotency key on every delivery. So required attributes are checked here first, and a time the
sender did not give stays ``None``.

Every failure is an :class:`EventDecodeError` naming the attribute (as it appeared on the wire:
``time attribute``, ``ce-time header``, ``datacontenttype (content-type header)``) and the problem.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
import string
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from schemas.event_envelope import (
    ChoreoEvent,
    EventDecodeError,
    GenericEvent,
    is_json_content_type,
    parse_json,
)

REQUIRED_ATTRIBUTES = ("id", "source", "type", "specversion")
CLOUDEVENTS_JSON = JSONFormat.CONTENT_TYPE
_CORE_ATTRIBUTES = {"id", "source", "type", "specversion", "time", "subject"}
_CORE_ATTRIBUTES |= {"datacontenttype", "dataschema"}
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

Label = Callable[[str], str]
"""How an attribute is named in error messages for one transport (``ce-time header``...)."""


def structured_label(name: str) -> str:
    """Structured mode (JSON event format): ``time attribute``."""
    return f"{name} attribute"


def http_label(name: str) -> str:
    """HTTP binary mode: ``ce-time header``; ``datacontenttype`` is the Content-Type header."""
    if name == "datacontenttype":
        return "datacontenttype (content-type header)"
    return f"ce-{name} header"


def pubsub_label(name: str) -> str:
    """Pub/Sub binary mode: ``ce-time attribute``."""
    if name == "datacontenttype":
        return "datacontenttype (content-type attribute)"
    return f"ce-{name} attribute"


# --- Core spec, "Naming Conventions": lower-case ASCII letters and digits; `data` is reserved.
# The 20-character limit is a SHOULD addressed to producers and is not enforced.
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]+")

# --- Core spec, "Type System", String: no control characters (U+0000-U+001F, U+007F-U+009F), no
# Unicode noncharacters (U+FDD0-U+FDEF and the last two code points of every plane), no unpaired
# surrogates (a JSON "\uD800\uDEAD" pair is already one code point once parsed).
_NONCHARACTERS = "".join(
    f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17)
)
_FORBIDDEN_IN_STRING = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef" + re.escape(_NONCHARACTERS) + "]"
)

# --- RFC 3986 (URI-reference, §4.1; URI, §3): split as in Appendix B (linear), then each
# component is checked against its character set, so no regex can backtrack on long input.
_URI_SPLIT = re.compile(r"(?:([^:/?#]+):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?", re.S)
_UNRESERVED_SUB_DELIMS = r"A-Za-z0-9\-._~!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_USERINFO = re.compile(rf"(?:[{_UNRESERVED_SUB_DELIMS}:]|{_PCT})*")
_REG_NAME = re.compile(rf"(?:[{_UNRESERVED_SUB_DELIMS}]|{_PCT})*")
_IPV_FUTURE = re.compile(rf"v[0-9A-Fa-f]+\.[{_UNRESERVED_SUB_DELIMS}:]+")
_PATH = re.compile(rf"(?:[{_UNRESERVED_SUB_DELIMS}:@/]|{_PCT})*")
_QUERY_OR_FRAGMENT = re.compile(rf"(?:[{_UNRESERVED_SUB_DELIMS}:@/?]|{_PCT})*")

# --- RFC 2046 media type, in the grammar of RFC 2045 §5.1: type "/" subtype *(";" parameter),
# parameter = attribute "=" value, value = token / quoted-string; token = printable US-ASCII
# except tspecials. Whitespace is allowed around ";" only (as HTTP's RFC 7231 §3.1.1.1 has it).
# Type and subtype are checked as tokens, not against the IANA registry.
_RFC2045_WORD = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_QUOTED_STRING = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*"'
_PARAMETER = rf"[ \t]*;[ \t]*{_RFC2045_WORD}=(?:{_RFC2045_WORD}|{_QUOTED_STRING})"
_MEDIA_TYPE = re.compile(rf"{_RFC2045_WORD}/{_RFC2045_WORD}(?:{_PARAMETER})*")

# --- RFC 3339 §5.6 date-time: full-date "T" hh:mm:ss [.frac] ("Z" / ("+"/"-") hh:mm).
# Decision: lower-case "t" and "z" are accepted, because §5.6 says so explicitly ("may
# alternatively be lower case"); the space separator §5.6 mentions as an application's choice is
# not part of the date-time grammar and is rejected. [0-9] rather than \d: no non-ASCII digits.
_DATE = r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
_PARTIAL_TIME = r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
_RFC3339 = re.compile(rf"{_DATE}[Tt]{_PARTIAL_TIME}(?:([Zz])|([+-])([0-9]{{2}}):([0-9]{{2}}))")
_NO_OFFSET = re.compile(rf"{_DATE}[Tt]{_PARTIAL_TIME}")
_NO_SECONDS = re.compile(
    rf"{_DATE}[Tt][0-9]{{2}}:[0-9]{{2}}(?:[Zz]|[+-][0-9]{{2}}(?::?[0-9]{{2}})?)?"
)
_BAD_OFFSET = re.compile(rf"{_DATE}[Tt]{_PARTIAL_TIME}[+-](?:[0-9]{{2}}|[0-9]{{4}}|[0-9]{{2}}:)")
_SPACE_SEPARATED = re.compile(rf"{_DATE} {_PARTIAL_TIME}.*", re.S)
_TIME_FORMAT = "YYYY-MM-DDThh:mm:ss[.fraction] followed by Z or ±hh:mm"


def read_data(body: bytes, content_type: str | None) -> Any:
    """Binary-mode data as a JSON value, or raw bytes when it is not declared as JSON."""
    if not body:
        return None
    if content_type is not None and is_json_content_type(content_type):
        return parse_json(body, what="data")
    if content_type is None:
        try:
            return parse_json(body, what="data")
        except EventDecodeError:
            return body
    return body


def require_attributes(present: Mapping[str, Any], *, prefix: str) -> None:
    """Raise ``missing <prefix>type attribute`` for the first required attribute not present.

    Core spec, "REQUIRED Attributes": id, source, type and specversion MUST be non-empty strings,
    and this version of the spec has specversion ``1.0``. ``None`` counts as absent (a JSON
    ``null`` is "unset", JSON format §2.2).
    """
    for name in REQUIRED_ATTRIBUTES:
        value = present.get(name)
        if value is None:
            raise EventDecodeError(f"missing {prefix}{name} attribute")
        if not isinstance(value, str):
            raise EventDecodeError(
                f"{prefix}{name} attribute must be a string, got {_json_kind(value)}"
            )
        if value == "":
            raise EventDecodeError(f"{prefix}{name} attribute is empty (must be non-empty)")
    if present["specversion"] != "1.0":
        raise EventDecodeError(
            f"unsupported {prefix}specversion {present['specversion']!r} (only 1.0)"
        )


def check_attribute_name(name: str, *, label: str) -> None:
    """Core spec, "Naming Conventions": ``[a-z0-9]+``, and never ``data``."""
    if name == "":
        raise EventDecodeError(
            f"invalid CloudEvent attributes: {label.strip()}: an attribute name is empty (it must "
            "consist of lower-case letters a-z and digits 0-9)"
        )
    if not _ATTRIBUTE_NAME.fullmatch(name):
        raise EventDecodeError(
            f"invalid CloudEvent attributes: {label}: an attribute name must consist of "
            f"lower-case letters a-z and digits 0-9 only, got {name!r}"
        )
    if name == "data":
        raise EventDecodeError(f"invalid CloudEvent attributes: {label}: the name data is reserved")


def validate_attributes(attributes: Mapping[str, Any], *, label: Label) -> dict[str, Any]:
    """Check every attribute against the core spec; return them with ``time`` as a datetime.

    ``attributes`` hold native JSON values (structured mode) or canonical strings (binary
    modes); absent or ``null`` optional attributes must already be left out.
    """
    for name in attributes:
        check_attribute_name(name, label=label(name))
    checked = dict(attributes)
    for name, value in attributes.items():
        where = label(name)
        if name in _CORE_ATTRIBUTES and not isinstance(value, str):
            raise EventDecodeError(f"{where} must be a string, got {_json_kind(value)}")
        if isinstance(value, str):
            check_string(value, label=where)
        if name == "source":
            check_uri_reference(value, label=where)
        elif name == "dataschema":
            check_absolute_uri(value, label=where)
        elif name == "datacontenttype":
            check_media_type(value, label=where)
        elif name == "subject" and value == "":
            raise EventDecodeError(f"{where} is empty (must be non-empty when present)")
        elif name == "time":
            checked[name] = parse_time(value, name=where)
        elif name not in _CORE_ATTRIBUTES:
            check_extension_value(value, label=where)
    return checked


def check_string(value: str, *, label: str) -> None:
    """Core spec, "Type System", String: no control characters, noncharacters or surrogates."""
    bad = _FORBIDDEN_IN_STRING.search(value)
    if bad is None:
        return
    code = ord(bad.group())
    if 0xD800 <= code <= 0xDFFF:
        problem = "an unpaired surrogate"
    elif code <= 0x1F or 0x7F <= code <= 0x9F:
        problem = "a control character"
    else:
        problem = "a Unicode noncharacter"
    raise EventDecodeError(
        f"{label} contains {problem} (U+{code:04X} at position {bad.start()}), "
        "not allowed in a CloudEvents String"
    )


def check_extension_value(value: Any, *, label: str) -> None:
    """Core spec, "Type System": extension values are String, Boolean, Integer (32-bit), or a
    string encoding (URI, URI-reference, Timestamp, Binary); JSON format §2.2 maps them."""
    if isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not INT32_MIN <= value <= INT32_MAX:
            raise EventDecodeError(
                f"{label} is out of the CloudEvents Integer range "
                f"({INT32_MIN} to {INT32_MAX}): {value}"
            )
        return
    if isinstance(value, float):
        raise EventDecodeError(
            f"{label} must be an Integer (a JSON number without fraction or exponent), "
            f"got {value!r}"
        )
    raise EventDecodeError(
        f"{label} is {_json_kind(value)}; an extension attribute must be a string, a boolean "
        "or an integer"
    )


def check_uri_reference(value: str, *, label: str) -> None:
    """RFC 3986 §4.1 URI-reference (the type of ``source``)."""
    problem = _uri_problem(value, absolute=False)
    if problem:
        raise EventDecodeError(f"{label} is not a URI-reference (RFC 3986): {value!r} ({problem})")


def check_absolute_uri(value: str, *, label: str) -> None:
    """RFC 3986 absolute URI (the type of ``dataschema``): a scheme is required.

    Decision: the spec's type table cites RFC 3986 §4.3 (absolute-URI, which has no fragment),
    while its own JSON Schema (cloudevents.json) gives dataschema ``format: uri``, which allows
    one. Schema URIs with a fragment (``...schema.json#/definitions/x``) are common, so a
    fragment is accepted; the scheme is not optional.
    """
    if value == "":
        raise EventDecodeError(f"{label} is empty (must be a non-empty URI)")
    problem = _uri_problem(value, absolute=True)
    if problem:
        raise EventDecodeError(f"{label} is not an absolute URI (RFC 3986): {value!r} ({problem})")


def _uri_problem(value: str, *, absolute: bool) -> str | None:
    match = _URI_SPLIT.fullmatch(value)
    if match is None:  # pragma: no cover - the Appendix B expression matches every string
        return "unparseable"
    scheme, authority, path, query, fragment = match.groups()
    problems: list[str | None] = []
    if scheme is None:
        problems.append("no scheme" if absolute else None)
    elif not _SCHEME.fullmatch(scheme):
        problems.append(f"invalid scheme {scheme!r}")
    if authority is not None:
        problems.append(_authority_problem(authority))
    for part, pattern, where in (
        (path, _PATH, "path"),
        (query, _QUERY_OR_FRAGMENT, "query"),
        (fragment, _QUERY_OR_FRAGMENT, "fragment"),
    ):
        if part is not None and not pattern.fullmatch(part):
            problems.append(f"invalid character in the {where}")
    return next((problem for problem in problems if problem), None)


def _authority_problem(authority: str) -> str | None:
    userinfo, at, host_port = authority.rpartition("@")
    problem: str | None = None
    if at and not _USERINFO.fullmatch(userinfo):
        problem = "invalid character in the userinfo"
    elif host_port.startswith("["):
        literal, bracket, port = host_port[1:].partition("]")
        if not bracket:
            problem = "unclosed IP literal"
        elif not (_IPV_FUTURE.fullmatch(literal) or _is_ipv6(literal)):
            problem = f"invalid IP literal [{literal}]"
        elif port and not re.fullmatch(r":[0-9]*", port):
            problem = "invalid port"
    else:
        host, colon, port = host_port.partition(":")
        if not _REG_NAME.fullmatch(host):
            problem = "invalid character in the host"
        elif colon and not re.fullmatch(r"[0-9]*", port):
            problem = "invalid port"
    return problem


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def check_media_type(value: str, *, label: str) -> None:
    """Core spec, datacontenttype: MUST adhere to RFC 2046 (``type/subtype; name=value``)."""
    if not _MEDIA_TYPE.fullmatch(value):
        raise EventDecodeError(
            f"{label} is not an RFC 2046 media type (type/subtype with optional ;name=value "
            f"parameters): {value!r}"
        )


def parse_time(value: Any, *, name: str) -> datetime:
    """An RFC 3339 ``date-time`` (core spec, Timestamp); the error names the attribute.

    Seconds are required, a fraction is optional (kept to the microsecond, the rest truncated),
    the offset is ``Z`` or ``±hh:mm`` (``-00:00`` is UTC). A leap second (``23:59:60`` UTC at the
    end of a month) becomes ``23:59:59.999999``: datetime cannot hold second 60.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise EventDecodeError(f"{name} has no UTC offset: {value!r}")
        return value
    if not isinstance(value, str):
        raise EventDecodeError(f"{name} must be an RFC 3339 string, got {_json_kind(value)}")
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise EventDecodeError(_time_problem(value, name))
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    if zulu or (int(off_h) == 0 and int(off_m) == 0):
        tz: timezone = UTC
    else:
        if int(off_h) > 23 or int(off_m) > 59:
            raise EventDecodeError(f"{name} has an offset out of range: {value!r}")
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        tz = timezone(-offset if sign == "-" else offset)
    leap = second == "60"
    try:
        parsed = datetime(
            int(year), int(month), int(day), int(hour), int(minute), 59 if leap else int(second),
            micro, tzinfo=tz,
        )  # fmt: skip
    except ValueError as exc:
        raise EventDecodeError(f"{name} is not a valid date and time: {value!r} ({exc})") from None
    if leap:
        return _leap_second(parsed, value, name)
    return parsed


def _leap_second(parsed: datetime, value: str, name: str) -> datetime:
    try:
        utc = parsed.astimezone(UTC)
        at_month_end = (utc.hour, utc.minute) == (23, 59) and (utc + timedelta(days=1)).day == 1
    except OverflowError:  # a UTC time past year 9999 (or before year 1)
        at_month_end = False
    if not at_month_end:
        raise EventDecodeError(
            f"{name} has second 60, which RFC 3339 allows only for a leap second "
            f"(23:59:60 UTC at the end of a month): {value!r}"
        )
    return parsed.replace(microsecond=999_999)


def _time_problem(value: str, name: str) -> str:
    if _NO_OFFSET.fullmatch(value):
        return f"{name} has no UTC offset: {value!r} (expected {_TIME_FORMAT})"
    if _NO_SECONDS.fullmatch(value):
        reason = "seconds are required"
    elif _BAD_OFFSET.fullmatch(value):
        reason = "the offset must be Z or ±hh:mm"
    elif _SPACE_SEPARATED.fullmatch(value):
        reason = "date and time must be separated by T"
    else:
        reason = f"expected {_TIME_FORMAT}"
    return f"{name} is not an RFC 3339 timestamp: {value!r} ({reason})"


def decode_base64(value: Any, *, label: str) -> bytes:
    """Core spec, Binary: RFC 4648 base64 (standard alphabet, padding, nothing else)."""
    if not isinstance(value, str):
        raise EventDecodeError(f"{label} must be a base64 string, got {_json_kind(value)}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EventDecodeError(f"{label} is not valid base64 (RFC 4648): {exc}") from None


def build_generic(attributes: dict[str, Any], data: Any) -> GenericEvent:
    """Validate attributes with the SDK's CloudEvent 1.0 rules and return a generic event."""
    has_time = "time" in attributes
    try:
        sdk_event = CloudEvent(dict(attributes), data)
    except BaseCloudEventException as exc:
        raise EventDecodeError(f"invalid CloudEvent attributes: {exc}") from None
    return from_sdk(sdk_event, has_time=has_time)


def from_sdk(event: BaseCloudEvent, *, has_time: bool) -> GenericEvent:
    """Copy an SDK event into a :class:`GenericEvent` (dropping an SDK-invented time)."""
    attributes = event.get_attributes()
    extensions = {k: v for k, v in attributes.items() if k not in _CORE_ATTRIBUTES}
    return GenericEvent(
        id=event.get_id(),
        source=event.get_source(),
        type=event.get_type(),
        specversion=event.get_specversion(),
        time=event.get_time() if has_time else None,
        subject=attributes.get("subject"),
        datacontenttype=attributes.get("datacontenttype"),
        dataschema=attributes.get("dataschema"),
        extensions=extensions,
        data=event.get_data(),
    )


def to_sdk(event: ChoreoEvent) -> CloudEvent:
    """The SDK form of a choreo event, data as a JSON-ready dict."""
    return CloudEvent(event.attributes(), event.data.model_dump(mode="json", exclude_none=True))


def decode_structured_json(body: bytes, *, what: str) -> GenericEvent:
    """A structured-mode JSON CloudEvent (``application/cloudevents+json``), JSON format §2-3.

    Members with a ``null`` value are unset (§2.2). ``data`` and ``data_base64`` are mutually
    exclusive (§3.1.1); ``data_base64`` is decoded to bytes (§3.1.2), a ``null`` one is unset.
    """
    document = _parse_event_document(body, what=what)
    has_data = "data" in document
    data = document.pop("data", None)
    data_base64 = document.pop("data_base64", None)
    attributes = {name: value for name, value in document.items() if value is not None}
    require_attributes(attributes, prefix="")
    checked = validate_attributes(attributes, label=structured_label)
    if data_base64 is not None:
        if has_data:
            raise EventDecodeError(
                "data and data_base64 are both present (they are mutually exclusive)"
            )
        data = decode_base64(data_base64, label="data_base64")
    return build_generic(checked, data)


def _parse_event_document(body: bytes, *, what: str) -> dict[str, Any]:
    # schemas.strict_json's limits first (depth, integer size, NUL, lone surrogates), then a
    # second pass, safe once the first succeeded, that sees member names given twice.
    document = parse_json(body, what=what)
    if not isinstance(document, dict):
        raise EventDecodeError(f"{what} must be a JSON object (a structured CloudEvent)")
    duplicated: dict[int, str] = {}  # id() of a parsed object -> a member name it had twice

    def from_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                duplicated.setdefault(id(result), key)
            result[key] = value
        return result

    try:
        again = json.loads(body, object_pairs_hook=from_pairs, parse_constant=float)
    except (ValueError, RecursionError) as exc:  # pragma: no cover - parse_json passed
        raise EventDecodeError(f"{what} is not valid JSON: {exc}") from None
    if id(again) in duplicated:
        # Core spec, "Context Attributes": each attribute MUST appear at most once. Only the
        # event object itself is checked (every parsed object is still alive, so ids are
        # distinct); data is any JSON value.
        raise EventDecodeError(
            f"{duplicated[id(again)]} attribute appears more than once in the JSON object"
        )
    return document


def decode_http_binary(headers: Mapping[str, str], body: bytes) -> GenericEvent:
    """An HTTP binary-mode CloudEvent; ``headers`` must already be lower-cased (HTTP binding §3.1).

    Header values are unquoted (RFC 7230 quoted-strings) and percent-decoded once (§3.1.3.2);
    ``Content-Type`` is ``datacontenttype`` and a ``ce-datacontenttype`` header is an error
    (§3.1.1).
    """
    if "ce-datacontenttype" in headers:
        raise EventDecodeError(
            "ce-datacontenttype header is not allowed in HTTP binary mode "
            "(datacontenttype is the Content-Type header)"
        )
    present: dict[str, Any] = {}
    for header, raw in headers.items():
        if header.startswith("ce-"):
            name = header.removeprefix("ce-")
            check_attribute_name(name, label=f"{header} header")
            present[name] = decode_header_value(raw, label=f"{header} header")
    content_type = headers.get("content-type")
    if content_type is not None:
        present["datacontenttype"] = content_type.strip(" \t")
    require_attributes(present, prefix="ce-")
    checked = validate_attributes(present, label=http_label)
    return build_generic(checked, read_data(body, checked.get("datacontenttype")))


def decode_header_value(raw: str, *, label: str) -> str:
    """HTTP binding §3.1.3.2: unescape RFC 7230 quoted-strings, then one round of
    percent-decoding; the bytes must be UTF-8 (overlong forms such as ``%C0%A0`` are rejected).
    """
    value = raw.strip(" \t")
    for position, char in enumerate(value):
        if not (" " <= char <= "~" or char == "\t"):
            raise EventDecodeError(
                f"{label} has a character outside printable US-ASCII (U+{ord(char):04X} at "
                f"position {position}); HTTP header values must percent-encode it"
            )
    unquoted = _unquote_http(value, label=label)
    decoded = bytearray()
    position = 0
    while position < len(unquoted):
        char = unquoted[position]
        if char == "%":
            pair = unquoted[position + 1 : position + 3]
            if len(pair) != 2 or not all(c in string.hexdigits for c in pair):
                raise EventDecodeError(
                    f"{label} has a malformed percent-encoding at position {position} "
                    f"(% must be followed by two hex digits): {raw!r}"
                )
            decoded.append(int(pair, 16))
            position += 3
        else:
            decoded += char.encode("ascii")
            position += 1
    try:
        return decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise EventDecodeError(
            f"{label} percent-encodes bytes that are not valid UTF-8: {raw!r}"
        ) from None


def _unquote_http(value: str, *, label: str) -> str:
    """RFC 7230 §3.2.6: remove the quotes of quoted-strings and their backslash escapes."""
    if '"' not in value:
        return value
    out: list[str] = []
    quoted = False
    position = 0
    while position < len(value):
        char = value[position]
        if char == '"':
            quoted = not quoted
        elif char == "\\" and quoted:
            if position + 1 == len(value):
                break
            position += 1
            out.append(value[position])
        else:
            out.append(char)
        position += 1
    if quoted:
        raise EventDecodeError(f"{label} has an unterminated quoted-string: {value!r}")
    return "".join(out)


def encode_http_binary(event: ChoreoEvent) -> tuple[dict[str, str], bytes]:
    """HTTP binary mode: ``ce-*`` headers, ``content-type``, body = the payload JSON."""
    message = ce_http.to_binary(to_sdk(event), JSONFormat())
    return dict(message.headers), message.body


def encode_structured(event: ChoreoEvent) -> bytes:
    """The whole event as one ``application/cloudevents+json`` document."""
    return JSONFormat().write(to_sdk(event))


_JSON_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"),  # before int: bool is an int
    (type(None), "null"),
    ((int, float), "a number"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


def _json_kind(value: Any) -> str:
    return next((kind for types, kind in _JSON_KINDS if isinstance(value, types)), "a value")
