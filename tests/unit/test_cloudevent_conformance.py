"""CloudEvents 1.0 conformance of decoding, case by case from the spec text, on every transport.

Specs: the core spec (spec.md), the JSON event format (formats/json-format.md), the HTTP
protocol binding (bindings/http-protocol-binding.md) and the Google Cloud Pub/Sub protocol
binding (pubsub-protocol-binding.md). Events are foreign (``com.example.someevent``), so the
generic decoders are used: typing into choreo events is tested elsewhere.

The transports:

- ``http-structured``: ``Content-Type: application/cloudevents+json``, body = the event;
- ``http-binary``: ``ce-*`` headers percent-encoded as HTTP binding §3.1.3.2 says, Content-Type =
  datacontenttype, body = the data;
- ``pubsub-binary`` / ``pubsub-structured``: Pub/Sub message attributes (``ce-*``, no
  percent-encoding) or the structured event as the message data;
- ``push-binary`` / ``push-structured``: the same messages inside a Pub/Sub push body;
- ``eventarc``: the binary message inside Eventarc's ``messagePublished`` CloudEvent.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from schemas.event_codec import EventDecodeError, GenericEvent, decode_http, decode_pubsub

MISSING = object()
"""In a case's changes: leave the attribute out."""

BASE: dict[str, Any] = {
    "specversion": "1.0",
    "id": "A234-1234-1234",
    "source": "/mycontext",
    "type": "com.example.someevent",
}
JSON_DATA = {"appinfoA": "abc", "appinfoB": 123}
RAW_DATA = "payload"
PUBLISHED = "2026-03-01T12:00:01Z"
MESSAGE_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


def _event(changes: dict[str, Any]) -> dict[str, Any]:
    event = BASE | changes
    return {k: v for k, v in event.items() if v is not MISSING}


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media.endswith("/json") or media.endswith("+json")


def _percent_encode(value: str) -> str:
    """HTTP binding §3.1.3.2: space, double-quote, percent and non-printable-ASCII as %XY."""
    out = []
    for char in value:
        if "!" <= char <= "~" and char not in '"%':
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
    return "".join(out)


def _canonical(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- Encoders: the event (attributes as a JSON object) on each transport.


def _structured_json(event: dict[str, Any]) -> bytes:
    body = dict(event)
    body["data"] = JSON_DATA if _is_json(event.get("datacontenttype")) else RAW_DATA
    return json.dumps(body).encode()


def _binary_parts(event: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """(attributes by wire name, data bytes) for the binary modes, values canonical strings."""
    content_type = event.get("datacontenttype")
    attributes = {
        f"ce-{name}": _canonical(value)
        for name, value in event.items()
        if name != "datacontenttype" and value is not None
    }
    if content_type is not None:
        attributes["content-type"] = content_type
    data = json.dumps(JSON_DATA) if _is_json(content_type) else RAW_DATA
    return attributes, data.encode()


def _http_structured(event: dict[str, Any]) -> GenericEvent:
    body = _structured_json(event)
    return decode_http({"content-type": "application/cloudevents+json"}, body).event


def _http_binary(event: dict[str, Any]) -> GenericEvent:
    attributes, data = _binary_parts(event)
    headers = {
        name: value if name == "content-type" else _percent_encode(value)
        for name, value in attributes.items()
    }
    return decode_http(headers, data).event


def _pubsub_binary(event: dict[str, Any]) -> GenericEvent:
    attributes, data = _binary_parts(event)
    return decode_pubsub(data, attributes).event


def _pubsub_structured(event: dict[str, Any]) -> GenericEvent:
    body = _structured_json(event)
    return decode_pubsub(body, {"content-type": "application/cloudevents+json"}).event


def _message(data: bytes, attributes: dict[str, str]) -> dict[str, Any]:
    return {
        "data": base64.b64encode(data).decode("ascii"),
        "attributes": attributes,
        "messageId": "m-1",
        "publishTime": PUBLISHED,
    }


def _push(data: bytes, attributes: dict[str, str]) -> GenericEvent:
    body = {"message": _message(data, attributes), "subscription": "projects/p/subscriptions/s"}
    return decode_http({"content-type": "application/json"}, json.dumps(body).encode()).event


def _push_binary(event: dict[str, Any]) -> GenericEvent:
    attributes, data = _binary_parts(event)
    return _push(data, attributes)


def _push_structured(event: dict[str, Any]) -> GenericEvent:
    return _push(_structured_json(event), {"content-type": "application/cloudevents+json"})


def _eventarc_around(data: bytes, attributes: dict[str, str]) -> GenericEvent:
    headers = {
        "ce-id": "1096434104173400",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
        "ce-specversion": "1.0",
        "ce-type": MESSAGE_PUBLISHED,
        "ce-time": PUBLISHED,
        "content-type": "application/json; charset=utf-8",
    }
    body = {"message": _message(data, attributes), "subscription": "projects/p/subscriptions/e"}
    return decode_http(headers, json.dumps(body).encode()).event


def _eventarc(event: dict[str, Any]) -> GenericEvent:
    attributes, data = _binary_parts(event)
    return _eventarc_around(data, attributes)


Decoder = Callable[[dict[str, Any]], GenericEvent]
STRUCTURED: dict[str, Decoder] = {
    "http-structured": _http_structured,
    "pubsub-structured": _pubsub_structured,
    "push-structured": _push_structured,
}
BINARY: dict[str, Decoder] = {
    "http-binary": _http_binary,
    "pubsub-binary": _pubsub_binary,
    "push-binary": _push_binary,
    "eventarc": _eventarc,
}
TRANSPORTS: dict[str, Decoder] = STRUCTURED | BINARY


def _raises(attribute: str, fragment: str) -> Any:
    """EventDecodeError whose message names ``attribute`` (as a word) and contains ``fragment``."""
    return pytest.raises(
        EventDecodeError,
        match=rf"(?s)(?=.*(?<![a-z0-9]){re.escape(attribute)}(?![a-z0-9])).*{re.escape(fragment)}",
    )


# ---------------------------------------------------------------------------------------------
# Valid events, on every transport. Each: (changes to BASE, expected time or None).
# ---------------------------------------------------------------------------------------------

EURO = "Euro € 😀"
VALID = [
    # Core spec, "REQUIRED Attributes": id, source, specversion, type and nothing else.
    pytest.param({}, None, id="required-only"),
    # Core spec, "Example" (and JSON format §3.2): the spec's own example event.
    pytest.param(
        {
            "source": "https://github.com/cloudevents/spec/pull",
            "subject": "123",
            "time": "2018-04-05T17:31:00Z",
            "comexampleextension1": "value",
            "datacontenttype": "text/xml",
        },
        datetime(2018, 4, 5, 17, 31, tzinfo=UTC),
        id="spec-example",
    ),
    # Core spec, source: "MUST be a non-empty URI-reference" (RFC 3986 §4.1); the spec's examples.
    pytest.param(
        {"source": "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"}, None, id="source-urn"
    ),
    pytest.param({"source": "mailto:cncf-wg-serverless@lists.cncf.io"}, None, id="source-mailto"),
    pytest.param({"source": "/cloudevents/spec/pull/123"}, None, id="source-absolute-path"),
    pytest.param({"source": "1-555-123-4567"}, None, id="source-relative-path"),
    pytest.param(
        {"source": "//storage.googleapis.com/projects/_/buckets/b"}, None, id="source-network-path"
    ),
    pytest.param(
        {"source": "//firestore.googleapis.com/projects/p/databases/(default)"},
        None,
        id="source-sub-delims",
    ),
    pytest.param({"source": "https://[2001:db8::1]:8443/x?q=1#f"}, None, id="source-ipv6-query"),
    pytest.param({"source": "https://example.com/a%20b"}, None, id="source-pct-encoded"),
    # Core spec, time: Timestamp = RFC 3339 §5.6 date-time.
    pytest.param(
        {"time": "2018-04-05T17:31:00.123Z"},
        datetime(2018, 4, 5, 17, 31, 0, 123000, tzinfo=UTC),
        id="time-millis",
    ),
    pytest.param(
        {"time": "2018-04-05T17:31:00.123456789Z"},
        datetime(2018, 4, 5, 17, 31, 0, 123456, tzinfo=UTC),
        id="time-nanos-truncated",
    ),
    pytest.param(
        {"time": "2018-04-05T17:31:00+05:30"},
        datetime(2018, 4, 5, 17, 31, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        id="time-offset",
    ),
    pytest.param(
        {"time": "2018-04-05T17:31:00-00:00"},
        datetime(2018, 4, 5, 17, 31, tzinfo=UTC),
        id="time-unknown-offset",
    ),
    # RFC 3339 §5.6 NOTE: "T" and "Z" may alternatively be lower case.
    pytest.param(
        {"time": "2018-04-05t17:31:00z"}, datetime(2018, 4, 5, 17, 31, tzinfo=UTC), id="time-lower"
    ),
    # RFC 3339 §5.7: second 60 for a leap second (kept as the last microsecond before it).
    pytest.param(
        {"time": "2016-12-31T23:59:60Z"},
        datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        id="time-leap-second",
    ),
    # Core spec, datacontenttype: RFC 2046 media types, with parameters.
    pytest.param(
        {"datacontenttype": "application/json; charset=utf-8"}, None, id="content-type-params"
    ),
    pytest.param(
        {"datacontenttype": 'text/plain;charset="us-ascii"'}, None, id="content-type-quoted"
    ),
    pytest.param(
        {"datacontenttype": "application/vnd.apache.thrift.binary"}, None, id="content-type-vnd"
    ),
    # Core spec, dataschema: a non-empty URI (fragment accepted: see event_binding).
    pytest.param({"dataschema": "https://example.com/schema.json"}, None, id="dataschema"),
    pytest.param(
        {"dataschema": "https://example.com/schema.json#/definitions/x"},
        None,
        id="dataschema-fragment",
    ),
    pytest.param({"dataschema": "urn:example:schema:v1"}, None, id="dataschema-urn"),
    # Core spec, "Naming Conventions": a-z and 0-9; over 20 characters is only a SHOULD NOT.
    pytest.param({"a1b2c3": "x", "abcdefghijklmnopqrstuvwxy": "long"}, None, id="extension-names"),
    # Core spec, "Type System", String: any Unicode except controls/noncharacters/surrogates.
    pytest.param({"subject": EURO, "id": 'A 234 "x"'}, None, id="string-unicode-and-quotes"),
    # Core spec, type: reverse-DNS is only a SHOULD.
    pytest.param({"type": "simple"}, None, id="type-not-reverse-dns"),
    # Distributed Tracing extension: plain String extensions.
    pytest.param(
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        None,
        id="traceparent",
    ),
]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("changes", "time"), VALID)
def test_valid_event_decodes(
    changes: dict[str, Any], time: datetime | None, transport: str
) -> None:
    """A valid event decodes on every transport, attributes and extensions unchanged."""
    event = _event(changes)
    decoded = TRANSPORTS[transport](event)
    core = {"specversion", "id", "source", "type", "time", "subject"}
    core |= {"datacontenttype", "dataschema"}
    assert decoded.id == event["id"]
    assert decoded.source == event["source"]
    assert decoded.type == event["type"]
    assert decoded.subject == event.get("subject")
    assert decoded.datacontenttype == event.get("datacontenttype")
    assert decoded.dataschema == event.get("dataschema")
    assert decoded.time == time
    if time is not None:
        assert decoded.time is not None and decoded.time.utcoffset() == time.utcoffset()
    assert decoded.extensions == {k: v for k, v in event.items() if k not in core}
    if _is_json(event.get("datacontenttype")):
        assert decoded.data == JSON_DATA
    else:
        assert decoded.data in (RAW_DATA, RAW_DATA.encode())


# ---------------------------------------------------------------------------------------------
# Invalid events, on every transport: (changes, attribute named in the error, message fragment).
# ---------------------------------------------------------------------------------------------

INVALID = [
    # Core spec, "REQUIRED Attributes": present, and non-empty strings.
    pytest.param({"id": MISSING}, "id", "missing", id="no-id"),
    pytest.param({"source": MISSING}, "source", "missing", id="no-source"),
    pytest.param({"type": MISSING}, "type", "missing", id="no-type"),
    pytest.param({"specversion": MISSING}, "specversion", "missing", id="no-specversion"),
    pytest.param({"id": ""}, "id", "is empty", id="empty-id"),
    pytest.param({"source": ""}, "source", "is empty", id="empty-source"),
    pytest.param({"type": ""}, "type", "is empty", id="empty-type"),
    # Core spec, specversion: "Compliant event producers MUST use a value of 1.0".
    pytest.param({"specversion": "0.3"}, "specversion", "only 1.0", id="specversion-0.3"),
    pytest.param({"specversion": "1"}, "specversion", "only 1.0", id="specversion-1"),
    # Core spec, time: "MUST adhere to the format specified in RFC 3339" (§5.6 date-time).
    pytest.param({"time": "2024-01-01T10:00Z"}, "time", "seconds are required", id="time-minutes"),
    pytest.param({"time": "2024-01-01T10:00:00+01"}, "time", "Z or ±hh:mm", id="time-offset-hours"),
    pytest.param(
        {"time": "2024-01-01T10:00:00+0100"}, "time", "Z or ±hh:mm", id="time-offset-no-colon"
    ),
    pytest.param({"time": "2024-01-01T10:00:00"}, "time", "no UTC offset", id="time-no-offset"),
    pytest.param(
        {"time": "2024-01-01 10:00:00Z"}, "time", "separated by T", id="time-space-separator"
    ),
    pytest.param({"time": "2024-01-01"}, "time", "not an RFC 3339", id="time-date-only"),
    pytest.param({"time": "yesterday"}, "time", "not an RFC 3339", id="time-words"),
    pytest.param({"time": "20240101T100000Z"}, "time", "not an RFC 3339", id="time-basic-iso"),
    pytest.param(
        {"time": "2024-01-01T10:00:00.Z"}, "time", "not an RFC 3339", id="time-empty-frac"
    ),
    pytest.param(
        {"time": "\uff12\uff10\uff12\uff14-01-01T10:00:00Z"},
        "time",
        "not an RFC 3339",
        id="time-unicode-digits",
    ),
    pytest.param({"time": "2024-13-01T10:00:00Z"}, "time", "not a valid date", id="time-month-13"),
    pytest.param({"time": "2023-02-29T10:00:00Z"}, "time", "not a valid date", id="time-feb-29"),
    pytest.param({"time": "2024-01-01T24:00:00Z"}, "time", "not a valid date", id="time-hour-24"),
    pytest.param({"time": "2024-01-01T10:60:00Z"}, "time", "not a valid date", id="time-minute-60"),
    pytest.param({"time": "2024-01-01T10:00:00+24:00"}, "time", "offset out of range", id="tz-24"),
    pytest.param({"time": "2016-12-30T23:59:60Z"}, "time", "leap second", id="time-not-leap"),
    # Core spec, datacontenttype: "MUST adhere to the format specified in RFC 2046".
    pytest.param({"datacontenttype": "json"}, "datacontenttype", "RFC 2046", id="ct-no-slash"),
    pytest.param(
        {"datacontenttype": "application/"}, "datacontenttype", "RFC 2046", id="ct-no-subtype"
    ),
    pytest.param({"datacontenttype": "/json"}, "datacontenttype", "RFC 2046", id="ct-no-type"),
    pytest.param({"datacontenttype": "text plain"}, "datacontenttype", "RFC 2046", id="ct-space"),
    pytest.param(
        {"datacontenttype": "text/plain;"}, "datacontenttype", "RFC 2046", id="ct-empty-param"
    ),
    pytest.param(
        {"datacontenttype": "text/plain; charset"},
        "datacontenttype",
        "RFC 2046",
        id="ct-param-no-value",
    ),
    pytest.param(
        {"datacontenttype": "text/plain; a=b c"}, "datacontenttype", "RFC 2046", id="ct-param-space"
    ),
    pytest.param(
        {"datacontenttype": "application/json, text/plain"},
        "datacontenttype",
        "RFC 2046",
        id="ct-list",
    ),
    # Core spec, source: URI-reference (RFC 3986 §4.1).
    pytest.param({"source": "a b"}, "source", "URI-reference", id="source-space"),
    pytest.param({"source": "http://exa mple.com/"}, "source", "URI-reference", id="source-host"),
    pytest.param({"source": "/a%zz"}, "source", "URI-reference", id="source-bad-pct"),
    pytest.param({"source": "1:x"}, "source", "invalid scheme", id="source-colon-first-seg"),
    pytest.param({"source": "//[::1/x"}, "source", "IP literal", id="source-unclosed-ip"),
    pytest.param({"source": "//[zz]/x"}, "source", "IP literal", id="source-bad-ipv6"),
    pytest.param({"source": "//host:8o/x"}, "source", "invalid port", id="source-bad-port"),
    pytest.param({"source": "/a#b#c"}, "source", "fragment", id="source-two-fragments"),
    pytest.param({"source": "/a<b>"}, "source", "URI-reference", id="source-angle-brackets"),
    # Core spec, dataschema: "If present, MUST be a non-empty URI".
    pytest.param({"dataschema": ""}, "dataschema", "is empty", id="dataschema-empty"),
    pytest.param({"dataschema": "/schemas/x"}, "dataschema", "no scheme", id="dataschema-relative"),
    pytest.param({"dataschema": "#frag"}, "dataschema", "no scheme", id="dataschema-fragment-only"),
    pytest.param(
        {"dataschema": "http://x/ y"}, "dataschema", "absolute URI", id="dataschema-space"
    ),
    # Core spec, subject: "If present, MUST be a non-empty string".
    pytest.param({"subject": ""}, "subject", "is empty", id="subject-empty"),
    # Core spec, "Type System", String: no controls (C0, DEL, C1) and no noncharacters.
    pytest.param({"id": "a\nb"}, "id", "control character", id="string-newline"),
    pytest.param({"subject": "a\u0085b"}, "subject", "control character", id="string-c1"),
    pytest.param({"type": "com.\x7f"}, "type", "control character", id="string-del"),
    pytest.param({"subject": "x\ufdd0"}, "subject", "noncharacter", id="string-fdd0"),
    pytest.param({"comexample": "\U0001ffff"}, "comexample", "noncharacter", id="string-1ffff"),
    # Core spec, "Naming Conventions": lower-case letters and digits only.
    pytest.param({"com_example": "x"}, "com_example", "lower-case letters", id="name-underscore"),
    pytest.param({"com-example": "x"}, "com-example", "lower-case letters", id="name-hyphen"),
]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("changes", "attribute", "fragment"), INVALID)
def test_invalid_event_is_rejected_naming_the_attribute(
    changes: dict[str, Any], attribute: str, fragment: str, transport: str
) -> None:
    """An invalid event raises EventDecodeError naming the attribute, on every transport."""
    with _raises(attribute, fragment):
        TRANSPORTS[transport](_event(changes))


# ---------------------------------------------------------------------------------------------
# JSON event format only (structured mode: HTTP, Pub/Sub, push).
# ---------------------------------------------------------------------------------------------


def _structured(document: dict[str, Any] | str, transport: str) -> GenericEvent:
    body = (document if isinstance(document, str) else json.dumps(document)).encode()
    ce_json = "application/cloudevents+json"
    if transport == "http-structured":
        return decode_http({"content-type": ce_json}, body).event
    if transport == "pubsub-structured":
        return decode_pubsub(body, {"content-type": ce_json}).event
    return _push(body, {"content-type": ce_json})


VALID_JSON = [
    # JSON format §2.2: "a null value ... MUST be treated as the equivalent of unset or omitted";
    # §3.2 examples carry "subject": null and "unsetextension": null.
    pytest.param(
        {
            "subject": None,
            "time": None,
            "datacontenttype": None,
            "dataschema": None,
            "unsetextension": None,
            "data": JSON_DATA,
        },
        {"data": JSON_DATA},
        id="null-optional-attributes",
    ),
    # JSON format §3.1.1: "data MAY have a value of null" (explicit null payload).
    pytest.param({"data": None}, {"data": None}, id="data-null"),
    # JSON format §3.1.2: data_base64 is decoded into a binary runtime type.
    pytest.param(
        {"datacontenttype": "application/octet-stream", "data_base64": "AAEC/w=="},
        {"data": b"\x00\x01\x02\xff"},
        id="data-base64",
    ),
    pytest.param({"data_base64": None, "data": 1}, {"data": 1}, id="data-base64-null"),
    # JSON format §2.2, Integer and Boolean extensions as JSON numbers and booleans.
    pytest.param(
        {"comexampleothervalue": 5, "min": -(2**31), "max": 2**31 - 1, "flag": True},
        {
            "extensions": {
                "comexampleothervalue": 5,
                "min": -(2**31),
                "max": 2**31 - 1,
                "flag": True,
            }
        },
        id="integer-and-boolean-extensions",
    ),
    # JSON format §3.2: no datacontenttype, a JSON string as data (implied application/json).
    pytest.param({"data": "I'm just a string"}, {"data": "I'm just a string"}, id="data-string"),
    # Core spec, "Type System", String: a surrogate pair, escaped, is one valid character.
    pytest.param(
        '{"specversion": "1.0", "id": "1", "source": "/s", "type": "t", '
        '"subject": "\\ud83d\\ude00"}',
        {"subject": "😀"},
        id="escaped-surrogate-pair",
    ),
]


@pytest.mark.parametrize("transport", STRUCTURED)
@pytest.mark.parametrize(("document", "expected"), VALID_JSON)
def test_valid_json_format_event_decodes(
    document: dict[str, Any] | str, expected: dict[str, Any], transport: str
) -> None:
    """JSON-format specifics: nulls are unset, data_base64 is bytes, typed extensions."""
    if isinstance(document, dict):
        document = BASE | document
    decoded = _structured(document, transport)
    assert decoded.subject == expected.get("subject")
    assert decoded.time is None
    assert decoded.datacontenttype == (
        document.get("datacontenttype") if isinstance(document, dict) else None
    )
    assert decoded.extensions == expected.get("extensions", {})
    if "data" in expected:
        assert decoded.data == expected["data"]


INVALID_JSON = [
    # JSON format §2.2 type system mapping: core attributes are JSON strings.
    pytest.param({"id": 5}, "id", "must be a string", id="id-number"),
    pytest.param({"specversion": 1.0}, "specversion", "must be a string", id="specversion-number"),
    pytest.param({"source": True}, "source", "must be a string", id="source-boolean"),
    pytest.param({"time": 1700000000}, "time", "must be a string", id="time-number"),
    pytest.param({"subject": ["a"]}, "subject", "must be a string", id="subject-array"),
    pytest.param({"datacontenttype": {}}, "datacontenttype", "must be a string", id="ct-object"),
    # Core spec, Integer: -2,147,483,648 to +2,147,483,647; JSON format: integer component only.
    pytest.param({"big": 2**31}, "big", "Integer range", id="int-too-big"),
    pytest.param({"small": -(2**31) - 1}, "small", "Integer range", id="int-too-small"),
    pytest.param({"ratio": 1.5}, "ratio", "must be an Integer", id="int-fraction"),
    pytest.param({"exp": 1e3}, "exp", "must be an Integer", id="int-exponent"),
    # Core spec: "All context attribute values MUST be of one of the types listed above".
    pytest.param({"obj": {"a": 1}}, "obj", "an object", id="extension-object"),
    pytest.param({"arr": [1]}, "arr", "an array", id="extension-array"),
    # Core spec, "Naming Conventions": JSON member names are case-sensitive.
    pytest.param({"comExample": "x"}, "comExample", "lower-case letters", id="name-upper"),
    pytest.param({"com.example": "x"}, "com.example", "lower-case letters", id="name-dot"),
    pytest.param({"": "x"}, "attribute", "lower-case letters", id="name-empty"),
    # JSON format §3.1.1: "the presence of the data and data_base64 members is mutually
    # exclusive"; §3.1.2 / core Binary: RFC 4648 base64.
    pytest.param(
        {"data": {}, "data_base64": "aGk="}, "data_base64", "mutually exclusive", id="both-data"
    ),
    pytest.param({"data_base64": "not base64!"}, "data_base64", "base64", id="base64-bad-char"),
    pytest.param({"data_base64": "aGk"}, "data_base64", "base64", id="base64-no-padding"),
    pytest.param({"data_base64": "-_8="}, "data_base64", "base64", id="base64-url-alphabet"),
    pytest.param({"data_base64": 5}, "data_base64", "base64 string", id="base64-number"),
    # Core spec, "Context Attributes": "Each context attribute MUST only appear at most once".
    pytest.param(
        '{"specversion": "1.0", "id": "1", "id": "2", "source": "/s", "type": "t"}',
        "id",
        "more than once",
        id="duplicate-member",
    ),
    # Core spec, String: unpaired surrogates are invalid ("\uDEAD" is the spec's own example).
    pytest.param(
        '{"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "subject": "\\uDEAD"}',
        "subject",
        "lone surrogate",
        id="lone-surrogate",
    ),
    # JSON format §3: the event is a JSON object (a batch is another format).
    pytest.param("[]", "body", "JSON object", id="not-an-object"),
]


@pytest.mark.parametrize("transport", STRUCTURED)
@pytest.mark.parametrize(("document", "attribute", "fragment"), INVALID_JSON)
def test_invalid_json_format_event_is_rejected(
    document: dict[str, Any] | str, attribute: str, fragment: str, transport: str
) -> None:
    """JSON-format violations name the member, in each structured transport."""
    if isinstance(document, dict):
        document = BASE | document
    if attribute == "body" and transport != "http-structured":
        attribute = "message data"
    with _raises(attribute, fragment):
        _structured(document, transport)


def test_structured_http_request_ignores_ce_headers() -> None:
    """HTTP binding §3 and §3.2.3: Content-Type decides the mode; ce-* headers MAY be present."""
    body = json.dumps(BASE | {"data": JSON_DATA}).encode()
    headers = {"content-type": "application/cloudevents+json", "ce-id": "other", "ce-type": "x"}
    delivery = decode_http(headers, body)
    assert delivery.transport == "http-structured"
    assert delivery.event.id == BASE["id"]


# ---------------------------------------------------------------------------------------------
# HTTP binary mode only: header values (HTTP binding §3.1.3.2) and Content-Type (§3.1.1).
# ---------------------------------------------------------------------------------------------


def _headers(**extra: str) -> dict[str, str]:
    headers = {f"ce-{k}": v for k, v in BASE.items()}
    headers["content-type"] = "application/json"
    return headers | {k.replace("_", "-"): v for k, v in extra.items()}


VALID_HTTP = [
    # §3.1.3.2 example: "Euro € 😀" encoded as "Euro%20%E2%82%AC%20%F0%9F%98%80".
    pytest.param(
        _headers(ce_subject="Euro%20%E2%82%AC%20%F0%9F%98%80"), "subject", EURO, id="pct-euro"
    ),
    # "decoding MUST accept lower-case values".
    pytest.param(_headers(ce_subject="%e2%82%ac"), "subject", "€", id="pct-lower-case"),
    # "values that have been unnecessarily percent-encoded MUST be accepted".
    pytest.param(_headers(ce_subject="%41bc"), "subject", "Abc", id="pct-unnecessary"),
    pytest.param(
        _headers(ce_time="2018-04-05T17%3A31%3A00Z"),
        "time",
        datetime(2018, 4, 5, 17, 31, tzinfo=UTC),
        id="pct-time",
    ),
    # "any HTTP header value MUST first be unescaped with respect to double-quoted strings".
    pytest.param(_headers(ce_subject='"hello world"'), "subject", "hello world", id="quoted"),
    pytest.param(_headers(ce_subject='"a\\"b"'), "subject", 'a"b', id="quoted-escape"),
    pytest.param(_headers(ce_subject='"%41"'), "subject", "A", id="quoted-then-pct"),
    # Older senders did not encode spaces (compatibility, §3.1.3.2).
    pytest.param(_headers(ce_subject="a b"), "subject", "a b", id="raw-space"),
    # Header names are case-insensitive (§3.1.3.1), optional whitespace around values (RFC 7230).
    pytest.param(
        {k.upper(): f" {v}\t" for k, v in _headers().items()}, "id", BASE["id"], id="upper-ows"
    ),
]


@pytest.mark.parametrize(("headers", "field", "expected"), VALID_HTTP)
def test_valid_http_binary_header_values_decode(
    headers: dict[str, str], field: str, expected: Any
) -> None:
    """Header values are unquoted, then percent-decoded exactly once."""
    event = decode_http(headers, b"{}").event
    assert getattr(event, field) == expected


INVALID_HTTP = [
    # §3.1.1: "a ce-datacontenttype HTTP header MUST NOT also be present".
    pytest.param(
        _headers(ce_datacontenttype="application/json"),
        "ce-datacontenttype",
        "not allowed",
        id="ce-datacontenttype",
    ),
    # §3.1.3.2: percent-decoding; malformed escapes.
    pytest.param(_headers(ce_subject="a%zz"), "ce-subject", "malformed", id="pct-not-hex"),
    pytest.param(_headers(ce_subject="a%4"), "ce-subject", "malformed", id="pct-short"),
    pytest.param(_headers(ce_subject="a%"), "ce-subject", "malformed", id="pct-trailing"),
    # "encoded byte sequences which are invalid in UTF-8 MUST be rejected" (e.g. "%C0%A0").
    pytest.param(_headers(ce_subject="%C0%A0"), "ce-subject", "not valid UTF-8", id="overlong"),
    pytest.param(_headers(ce_subject="%FF"), "ce-subject", "not valid UTF-8", id="pct-ff"),
    pytest.param(_headers(ce_subject="%ED%A0%80"), "ce-subject", "not valid UTF-8", id="surrogate"),
    # Decoded values are still Strings: no control characters.
    pytest.param(_headers(ce_subject="a%0Ab"), "ce-subject", "control character", id="pct-lf"),
    # "HTTP headers MUST only use printable characters from the US-ASCII character set".
    pytest.param(_headers(ce_subject="caf\u00e9"), "ce-subject", "US-ASCII", id="raw-non-ascii"),
    pytest.param(_headers(ce_subject='"abc'), "ce-subject", "unterminated", id="open-quote"),
    # Core spec, "Naming Conventions": data is reserved.
    pytest.param(_headers(ce_data="x"), "ce-data", "reserved", id="ce-data"),
    # Content-Type is datacontenttype, so an RFC 2046 media type.
    pytest.param(
        _headers(content_type="text plain"), "datacontenttype", "RFC 2046", id="content-type-bad"
    ),
    # Core spec, "Context Attributes": each attribute at most once.
    pytest.param(
        [*_headers().items(), ("CE-ID", "other")], "ce-id", "more than once", id="duplicate"
    ),
]


@pytest.mark.parametrize(("headers", "attribute", "fragment"), INVALID_HTTP)
def test_invalid_http_binary_headers_are_rejected(
    headers: Any, attribute: str, fragment: str
) -> None:
    """Header-level violations of the HTTP binding name the header."""
    with _raises(attribute, fragment):
        decode_http(headers, b"{}")


def test_eventarc_outer_event_is_checked_like_any_binary_event() -> None:
    """The messagePublished wrapper is itself a CloudEvent: its ce-time must be RFC 3339."""
    attributes, data = _binary_parts(_event({}))
    body = {"message": _message(data, attributes), "subscription": "s"}
    headers = {
        "ce-id": "1",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
        "ce-specversion": "1.0",
        "ce-type": MESSAGE_PUBLISHED,
        "ce-time": "2026-03-01T12:00Z",
        "content-type": "application/json",
    }
    with _raises("ce-time", "seconds are required"):
        decode_http(headers, json.dumps(body).encode())


# ---------------------------------------------------------------------------------------------
# Pub/Sub binding only (pull, push and Eventarc carry the same message attributes).
# ---------------------------------------------------------------------------------------------


def _pubsub_attributes(**extra: str) -> dict[str, str]:
    return {f"ce-{k}": v for k, v in BASE.items()} | extra


PUBSUB_DECODERS: dict[str, Callable[[bytes, dict[str, str]], GenericEvent]] = {
    "pubsub-binary": lambda data, attributes: decode_pubsub(data, attributes).event,
    "push-binary": _push,
    "eventarc": _eventarc_around,
}


@pytest.mark.parametrize("transport", PUBSUB_DECODERS)
@pytest.mark.parametrize(
    ("attributes", "field", "expected"),
    [
        # Pub/Sub binding §3.1.4 example: datacontenttype as ce-datacontenttype.
        pytest.param(
            _pubsub_attributes(**{"ce-datacontenttype": "application/json; charset=utf-8"}),
            "datacontenttype",
            "application/json; charset=utf-8",
            id="ce-datacontenttype",
        ),
        pytest.param(
            _pubsub_attributes(
                **{"content-type": "application/json", "ce-datacontenttype": "application/json"}
            ),
            "datacontenttype",
            "application/json",
            id="both-agree",
        ),
        # §3.1.3.2: canonical string values, no percent-encoding (unlike HTTP).
        pytest.param(
            _pubsub_attributes(**{"ce-subject": "a%20b"}), "subject", "a%20b", id="no-pct-decoding"
        ),
        pytest.param(_pubsub_attributes(**{"ce-subject": EURO}), "subject", EURO, id="utf-8"),
        # §3.1.3.1: attribute names are case-insensitive.
        pytest.param(
            {k.upper(): v for k, v in _pubsub_attributes().items()}, "id", BASE["id"], id="upper"
        ),
    ],
)
def test_valid_pubsub_attributes_decode(
    attributes: dict[str, str], field: str, expected: str, transport: str
) -> None:
    """Pub/Sub attribute values are taken as they are; either content-type spelling works."""
    event = PUBSUB_DECODERS[transport](b"{}", attributes)
    assert getattr(event, field) == expected


@pytest.mark.parametrize("transport", PUBSUB_DECODERS)
@pytest.mark.parametrize(
    ("attributes", "attribute", "fragment"),
    [
        pytest.param(
            _pubsub_attributes(
                **{"content-type": "application/json", "ce-datacontenttype": "text/plain"}
            ),
            "datacontenttype",
            "disagree",
            id="content-types-disagree",
        ),
        pytest.param(
            _pubsub_attributes(**{"CE-ID": "other"}), "ce-id", "more than once", id="case-duplicate"
        ),
        pytest.param(_pubsub_attributes(**{"ce-data": "x"}), "ce-data", "reserved", id="ce-data"),
        pytest.param(
            _pubsub_attributes(**{"ce-subject": "a\tb"}), "ce-subject", "control", id="tab"
        ),
    ],
)
def test_invalid_pubsub_attributes_are_rejected(
    attributes: dict[str, str], attribute: str, fragment: str, transport: str
) -> None:
    """Pub/Sub-specific violations name the attribute."""
    with _raises(attribute, fragment):
        PUBSUB_DECODERS[transport](b"{}", attributes)


# ---------------------------------------------------------------------------------------------
# Nothing but EventDecodeError escapes.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param(
            {"content-type": "application/cloudevents+json"}, b"[" * 100_000, id="deep-structured"
        ),
        pytest.param(
            {"content-type": "application/cloudevents+json"},
            json.dumps(BASE).encode()[:-1] + b', "data": ' + b"[" * 100_000 + b"}",
            id="deep-data",
        ),
        pytest.param(_headers(), b"[" * 100_000, id="deep-binary-data"),
        pytest.param({"content-type": "application/cloudevents+json"}, b"\xff\xfe", id="not-utf8"),
        pytest.param(
            {"content-type": "application/cloudevents+json"},
            json.dumps(BASE | {"time": "9999-12-31T23:59:60-23:59"}).encode(),
            id="leap-second-overflow",
        ),
        pytest.param(
            {"content-type": "application/json"},
            json.dumps({"context": {"eventType": [], "eventId": "1"}}).encode(),
            id="legacy-type-not-string",
        ),
    ],
)
def test_hostile_input_raises_only_event_decode_error(headers: dict[str, str], body: bytes) -> None:
    """Deep nesting, bad bytes and out-of-range times end as EventDecodeError, nothing else."""
    with pytest.raises(EventDecodeError):
        decode_http(headers, body)
