"""The bridge to the ``cloudevents`` SDK: spec validation and the HTTP binding live there.

The SDK fills in a missing ``id`` (a new UUID) and ``time`` (now) when it builds an event. That
is right for producing and wrong for decoding: a message without an id would get a fresh
idempotency key on every delivery. So required attributes are checked here first, and a time the
sender did not give stays ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
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


class StrictJSONFormat(JSONFormat):
    """The SDK's JSON format, except that data declared as JSON must parse.

    The SDK silently hands back the text when JSON data does not parse; a consumer would then
    fail later with a less useful message, so the error is raised where it happens.
    """

    def read_data(self, body: bytes, datacontenttype: str | None) -> Any:
        """Parse binary-mode data: JSON when declared (or undeclared and parseable), else bytes."""
        return read_data(body, datacontenttype)


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
    """Raise ``missing <prefix>type attribute`` for the first required attribute not present."""
    for name in REQUIRED_ATTRIBUTES:
        value = present.get(name)
        if value is None or value == "":
            raise EventDecodeError(f"missing {prefix}{name} attribute")
    if present["specversion"] != "1.0":
        raise EventDecodeError(
            f"unsupported {prefix}specversion {present['specversion']!r} (only 1.0)"
        )


def parse_time(value: Any, *, name: str) -> datetime:
    """An RFC 3339 timestamp with an offset; the error names the attribute."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            raise EventDecodeError(f"{name} is not an RFC 3339 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise EventDecodeError(f"{name} has no UTC offset: {value!r}")
    return parsed


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
    """A structured-mode JSON CloudEvent (``application/cloudevents+json``)."""
    document = parse_json(body, what=what)
    if not isinstance(document, dict):
        raise EventDecodeError(f"{what} must be a JSON object (a structured CloudEvent)")
    require_attributes(document, prefix="")
    if "time" in document:
        parse_time(document["time"], name="time attribute")
    try:
        sdk_event = StrictJSONFormat().read(CloudEvent, body)
    except BaseCloudEventException as exc:
        raise EventDecodeError(f"invalid CloudEvent attributes: {exc}") from None
    except ValueError as exc:  # data_base64 that is not base64
        raise EventDecodeError(f"invalid structured CloudEvent: {exc}") from None
    return from_sdk(sdk_event, has_time="time" in document)


def decode_http_binary(headers: Mapping[str, str], body: bytes) -> GenericEvent:
    """An HTTP binary-mode CloudEvent; ``headers`` must already be lower-cased."""
    present = {k.removeprefix("ce-"): v for k, v in headers.items() if k.startswith("ce-")}
    require_attributes(present, prefix="ce-")
    if "time" in present:
        parse_time(present["time"], name="ce-time header")
    message = ce_http.HTTPMessage(headers=dict(headers), body=body)
    try:
        sdk_event = ce_http.from_binary(message, StrictJSONFormat(), CloudEvent)
    except BaseCloudEventException as exc:
        raise EventDecodeError(f"invalid CloudEvent attributes: {exc}") from None
    return from_sdk(sdk_event, has_time="time" in present)


def encode_http_binary(event: ChoreoEvent) -> tuple[dict[str, str], bytes]:
    """HTTP binary mode: ``ce-*`` headers, ``content-type``, body = the payload JSON."""
    message = ce_http.to_binary(to_sdk(event), JSONFormat())
    return dict(message.headers), message.body


def encode_structured(event: ChoreoEvent) -> bytes:
    """The whole event as one ``application/cloudevents+json`` document."""
    return JSONFormat().write(to_sdk(event))
