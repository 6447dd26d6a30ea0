"""Legacy Cloud Functions background events, converted to CloudEvents.

Follows functions-framework-python's ``event_conversion.background_event_to_cloud_event`` (and
the conformance suite's mapping): both the ``{"context": ..., "data": ...}`` form and the old
flat form (``eventId``, ``eventType``, ``resource`` at the top level) become a CloudEvent with
the mapped type, ``source = //<service>/<resource>`` and, for some services, a ``subject`` split
off the resource. Pub/Sub data is wrapped as ``{"message": ...}`` with ``messageId`` and
``publishTime`` filled from the context, so it reads like Eventarc's ``MessagePublishedData``.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from schemas.event_binding import build_generic, parse_time
from schemas.event_envelope import JSON_CONTENT_TYPE, EventDecodeError, GenericEvent

MESSAGE_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"

_TYPE_BY_LEGACY_TYPE = {
    "google.pubsub.topic.publish": MESSAGE_PUBLISHED,
    "providers/cloud.pubsub/eventTypes/topic.publish": MESSAGE_PUBLISHED,
    "google.storage.object.finalize": "google.cloud.storage.object.v1.finalized",
    "google.storage.object.delete": "google.cloud.storage.object.v1.deleted",
    "google.storage.object.archive": "google.cloud.storage.object.v1.archived",
    "google.storage.object.metadataUpdate": "google.cloud.storage.object.v1.metadataUpdated",
    "providers/cloud.storage/eventTypes/object.change": "google.cloud.storage.object.v1.finalized",
    "providers/cloud.firestore/eventTypes/document.write": (
        "google.cloud.firestore.document.v1.written"
    ),
    "providers/cloud.firestore/eventTypes/document.create": (
        "google.cloud.firestore.document.v1.created"
    ),
    "providers/cloud.firestore/eventTypes/document.update": (
        "google.cloud.firestore.document.v1.updated"
    ),
    "providers/cloud.firestore/eventTypes/document.delete": (
        "google.cloud.firestore.document.v1.deleted"
    ),
    "providers/firebase.auth/eventTypes/user.create": "google.firebase.auth.user.v1.created",
    "providers/firebase.auth/eventTypes/user.delete": "google.firebase.auth.user.v1.deleted",
    "providers/google.firebase.analytics/eventTypes/event.log": (
        "google.firebase.analytics.log.v1.written"
    ),
    "providers/google.firebase.database/eventTypes/ref.create": (
        "google.firebase.database.ref.v1.created"
    ),
    "providers/google.firebase.database/eventTypes/ref.write": (
        "google.firebase.database.ref.v1.written"
    ),
    "providers/google.firebase.database/eventTypes/ref.update": (
        "google.firebase.database.ref.v1.updated"
    ),
    "providers/google.firebase.database/eventTypes/ref.delete": (
        "google.firebase.database.ref.v1.deleted"
    ),
}

_PUBSUB = "pubsub.googleapis.com"
_STORAGE = "storage.googleapis.com"
_FIRESTORE = "firestore.googleapis.com"
_FIREBASE = "firebase.googleapis.com"
_FIREBASE_AUTH = "firebaseauth.googleapis.com"
_FIREBASE_DB = "firebasedatabase.googleapis.com"

# Legacy type prefix -> CloudEvent service, for resources given as a bare string.
_SERVICE_BY_PREFIX = {
    "providers/cloud.firestore/": _FIRESTORE,
    "providers/google.firebase.analytics/": _FIREBASE,
    "providers/firebase.auth/": _FIREBASE_AUTH,
    "providers/google.firebase.database/": _FIREBASE_DB,
    "providers/cloud.pubsub/": _PUBSUB,
    "providers/cloud.storage/": _STORAGE,
    "google.pubsub": _PUBSUB,
    "google.storage": _STORAGE,
}

# Service -> regex splitting a legacy resource into (CloudEvent resource, subject).
# functions-framework writes the storage project as [^/] (one character, which matches "_");
# [^/]+ accepts the same inputs and any real project id.
_RESOURCE_SPLIT = {
    _FIREBASE: re.compile(r"^(projects/[^/]+)/(events/[^/]+)$"),
    _FIREBASE_DB: re.compile(r"^projects/_/(instances/[^/]+)/(refs/.+)$"),
    _FIRESTORE: re.compile(r"^(projects/[^/]+/databases/\(default\))/(documents/.+)$"),
    _STORAGE: re.compile(r"^(projects/[^/]+/buckets/[^/]+)/(objects/.+)$"),
}

_AUTH_METADATA_RENAMES = {"createdAt": "createTime", "lastSignedInAt": "lastSignInTime"}


def is_legacy_event(body: dict[str, Any]) -> bool:
    """True for a background event body, nested (``context``) or flat (``eventType``)."""
    return "context" in body or "eventType" in body


def legacy_to_cloudevent(body: dict[str, Any]) -> GenericEvent:
    """Convert a legacy background event body into the equivalent CloudEvent."""
    context = body.get("context")
    if context is None:
        context = {k: body.get(k, "") for k in ("eventId", "timestamp", "eventType", "resource")}
    if not isinstance(context, dict):
        raise EventDecodeError("legacy event context must be a JSON object")
    try:
        data = copy.deepcopy(body.get("data", ""))
    except RecursionError:  # deepcopy needs more stack than json.loads for the same nesting
        raise EventDecodeError("legacy event data is nested too deeply") from None
    event_type = context.get("eventType", "")
    if not isinstance(event_type, str):
        raise EventDecodeError("legacy event context.eventType must be a string")
    ce_type = _TYPE_BY_LEGACY_TYPE.get(event_type)
    if ce_type is None:
        raise EventDecodeError(f"legacy event type {event_type!r} has no CloudEvent equivalent")
    event_id = context.get("eventId")
    if not event_id:
        raise EventDecodeError("legacy event has no context.eventId")
    service, resource, subject = _split_resource(context.get("resource"), event_type)
    source = f"//{service}/{resource}"

    if service == _PUBSUB and isinstance(data, dict):
        data.setdefault("messageId", event_id)
        data.setdefault("publishTime", context.get("timestamp"))
        data = {"message": data}
    if service == _FIREBASE_AUTH and isinstance(data, dict):
        subject = _rename_auth_fields(data) or subject
    if service == _FIREBASE_DB:
        source = f"//{service}/projects/_/locations/{_database_location(body)}/{resource}"

    attributes: dict[str, Any] = {
        "id": str(event_id),
        "source": source,
        "type": ce_type,
        "specversion": "1.0",
        "datacontenttype": JSON_CONTENT_TYPE,
    }
    if context.get("timestamp"):
        attributes["time"] = parse_time(context["timestamp"], name="context.timestamp")
    if subject:
        attributes["subject"] = subject
    return build_generic(attributes, data)


def _rename_auth_fields(data: dict[str, Any]) -> str | None:
    """Rename Firebase Auth metadata fields in place; the subject is the user, when known."""
    metadata = data.get("metadata")
    if isinstance(metadata, dict):
        for old, new in _AUTH_METADATA_RENAMES.items():
            if old in metadata:
                metadata[new] = metadata.pop(old)
    return f"users/{data['uid']}" if "uid" in data else None


def _database_location(body: dict[str, Any]) -> str:
    # The CloudEvent source carries a location that legacy events only imply by their domain.
    domain = body.get("domain")
    if not isinstance(domain, str):
        raise EventDecodeError("legacy Firebase Realtime Database event has no domain")
    return "us-central1" if domain == "firebaseio.com" else domain.split(".")[0]


def _split_resource(resource: Any, event_type: str) -> tuple[str, str, str]:
    service = ""
    if isinstance(resource, dict):
        service = str(resource.get("service", ""))
        name = resource.get("name")
        if not isinstance(name, str):
            raise EventDecodeError("legacy event context.resource has no name")
        resource = name
    if not isinstance(resource, str):
        raise EventDecodeError("legacy event context.resource must be a string or an object")
    if not service:
        service = next(
            (svc for prefix, svc in _SERVICE_BY_PREFIX.items() if event_type.startswith(prefix)),
            "",
        )
        if not service:
            raise EventDecodeError(f"no CloudEvent service for legacy event type {event_type!r}")
    pattern = _RESOURCE_SPLIT.get(service)
    if pattern is None:
        return service, resource, ""
    match = pattern.fullmatch(resource)
    if match is None:
        raise EventDecodeError(f"legacy resource {resource!r} does not match {service} naming")
    return service, match.group(1), match.group(2)
