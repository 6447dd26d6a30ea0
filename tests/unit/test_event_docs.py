"""The examples in docs/EVENTS.md are real messages that the codec accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from schemas.event_codec import from_pubsub
from schemas.events import EVENT_SPECS

EVENTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "EVENTS.md"


def _examples() -> list[dict[str, Any]]:
    blocks = re.findall(r"```json\n(.*?)```", EVENTS_DOC.read_text(), flags=re.DOTALL)
    return [json.loads(block) for block in blocks]


EXAMPLES = _examples()


def test_doc_has_one_example_per_event_type() -> None:
    """Each registered type has exactly one Pub/Sub example in the catalogue."""
    assert sorted(e["attributes"]["ce-type"] for e in EXAMPLES) == sorted(EVENT_SPECS)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e["attributes"]["ce-type"])
def test_doc_example_decodes_with_its_ordering_key(example: dict[str, Any]) -> None:
    """A documented example decodes, and its ordering key is the event's task id."""
    data = json.dumps(example["data"]).encode()
    event = from_pubsub(data, example["attributes"]).event
    assert event.type == example["attributes"]["ce-type"]
    assert event.ordering_key == example["ordering_key"]
