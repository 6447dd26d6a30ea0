"""Terraform's Pub/Sub resources and schemas/topology.py describe the same topology.

pubsub.tf creates one topic and one subscription per entry of topology.json; these tests
evaluate its attribute expressions against that file (what Terraform would plan) and compare the
result with ``build_topology()``, and check the file is freshly generated.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from schemas.topology import DeadLetterPolicy, RetryPolicy, Subscription, build_topology
from tests.unit.test_terraform_hcl import TERRAFORM, blocks, unquote

TOPIC_REF = re.compile(r"^\$\{google_pubsub_topic\.topics\[(?P<key>[\w.]+)\]\.id\}$")
VALUE_REF = re.compile(r"^\$\{(?P<path>[\w.]+)\}$")
SUBSCRIPTIONS_FOR_EACH = (
    "${{for name, s in local.topology.subscriptions : name => s "
    'if s.service == null || var.consumer_delivery == "push"}}'
)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_topology", TERRAFORM / "generate_topology.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _resource(resource_type: str, name: str) -> dict[str, Any]:
    (body,) = [b for t, n, b in blocks("resource") if (t, n) == (resource_type, name)]
    return body


def _lookup(path: str, scope: dict[str, Any]) -> Any:
    """Resolve ``each.value.a.b`` / ``dead_letter_policy.value.x`` against ``scope``."""
    head, *rest = path.split(".")
    value = scope[head]
    for part in rest:
        value = value[part]
    return value


def _evaluate(expr: Any, scope: dict[str, Any]) -> Any:
    """The value of one attribute, for the few expression shapes pubsub.tf may use."""
    if not isinstance(expr, str):
        return expr
    if topic := TOPIC_REF.match(expr):
        return {"topic": _lookup(topic["key"], scope)}
    if ref := VALUE_REF.match(expr):
        return _lookup(ref["path"], scope)
    if expr.startswith('"') and "${" not in expr:
        return unquote(expr)
    raise AssertionError(f"pubsub.tf uses an expression this check cannot evaluate: {expr}")


def _dynamic(body: dict[str, Any], block: str) -> dict[str, Any] | None:
    """The content of dynamic ``block`` as a dict of raw expressions, or None if absent."""
    for dynamic in body.get("dynamic", []):
        for label, spec in dynamic.items():
            if unquote(label) == block:
                return spec  # type: ignore[no-any-return]
    return None


def terraform_subscriptions(document: dict[str, Any], delivery: str) -> dict[str, Subscription]:
    """The subscriptions pubsub.tf would create from ``document``, as topology objects."""
    body = _resource("google_pubsub_subscription", "subscriptions")
    assert body["for_each"] == SUBSCRIPTIONS_FOR_EACH
    created: dict[str, Subscription] = {}
    for key, value in document["subscriptions"].items():
        if value["service"] is not None and delivery != "push":
            continue
        scope = {"each": {"key": key, "value": value}}
        retry = body["retry_policy"][0]
        dead_letter = None
        spec = _dynamic(body, "dead_letter_policy")
        assert spec is not None, "pubsub.tf lost its dead_letter_policy block"
        assert spec["for_each"] == (
            "${each.value.dead_letter_policy == null ? [] : [each.value.dead_letter_policy]}"
        )
        if value["dead_letter_policy"] is not None:
            content = spec["content"][0]
            inner = {**scope, "dead_letter_policy": {"value": value["dead_letter_policy"]}}
            dead_letter = DeadLetterPolicy(
                topic=_evaluate(content["dead_letter_topic"], inner)["topic"],
                max_delivery_attempts=_evaluate(content["max_delivery_attempts"], inner),
            )
        created[_evaluate(body["name"], scope)] = Subscription(
            name=_evaluate(body["name"], scope),
            topic=_evaluate(body["topic"], scope)["topic"],
            ack_deadline_s=_evaluate(body["ack_deadline_seconds"], scope),
            dead_letter=dead_letter,
            retry=RetryPolicy(
                minimum_backoff_s=_seconds(_evaluate(retry["minimum_backoff"], scope)),
                maximum_backoff_s=_seconds(_evaluate(retry["maximum_backoff"], scope)),
            ),
            retention_s=_seconds(_evaluate(body["message_retention_duration"], scope)),
            enable_message_ordering=_evaluate(body["enable_message_ordering"], scope),
        )
    return created


def eventarc_patches(document: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per consumer: the flags the eventarc-mode gcloud step gives Eventarc's subscription."""
    body = _resource("terraform_data", "eventarc_subscription_policy")
    command = body["provisioner"][0]['"local-exec"']["command"]
    flags = re.findall(r'"--([\w-]+)=\$\{(.+?)\}"', command)
    patches: dict[str, dict[str, str]] = {}
    for key, value in document["subscriptions"].items():
        if value["service"] is None:
            continue
        resolved = {}
        for flag, raw in flags:
            expr = raw.replace("local.consumer_subscriptions[each.key]", "sub")
            topic = re.fullmatch(r"google_pubsub_topic\.topics\[(.+)\]\.id", expr)
            path = topic.group(1) if topic else expr
            if path.startswith("var."):
                continue
            resolved[flag] = str(_lookup(path, {"sub": value}))
        patches[key] = resolved
    return patches


def _seconds(duration: str) -> int:
    assert duration.endswith("s"), duration
    return int(duration[:-1])


def _code_subscriptions() -> dict[str, Subscription]:
    return {s.name: s for s in build_topology().subscriptions}


@pytest.fixture
def document() -> dict[str, Any]:
    """The committed topology.json."""
    return json.loads((TERRAFORM / "topology.json").read_text(encoding="utf-8"))


def test_generated_file_is_fresh() -> None:
    """topology.json is byte-for-byte what the generator writes from schemas/topology.py."""
    committed = (TERRAFORM / "topology.json").read_text(encoding="utf-8")
    assert committed == _generator().render(), "run infra/terraform/generate_topology.py"


def test_generator_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    """``--check`` exits 1 when the file differs and 0 when it matches."""
    generator = _generator()
    generator.OUTPUT = tmp_path / "topology.json"
    generator.OUTPUT.write_text("{}\n", encoding="utf-8")
    assert generator.main(["--check"]) == 1
    assert generator.main([]) == 0
    assert generator.main(["--check"]) == 0


def test_terraform_reads_the_generated_file() -> None:
    """main.tf takes the topology from topology.json, not from a hand-written copy."""
    main_tf = (TERRAFORM / "main.tf").read_text(encoding="utf-8")
    assert 'jsondecode(file("${path.module}/topology.json"))' in main_tf


def test_topics_are_exactly_the_code_topics(document: dict[str, Any]) -> None:
    """One google_pubsub_topic per topology topic, named by its key, and no other topic."""
    topic_resources = [n for t, n, _ in blocks("resource") if t == "google_pubsub_topic"]
    assert topic_resources == ["topics"]
    body = _resource("google_pubsub_topic", "topics")
    assert body["for_each"] == "${local.topology.topics}"
    assert body["name"] == "${each.key}"
    code = {t.name: t.dead_letter_of for t in build_topology().topics}
    assert {k: v["dead_letter_of"] for k, v in document["topics"].items()} == code


def test_push_mode_creates_exactly_the_code_subscriptions(document: dict[str, Any]) -> None:
    """In push mode every subscription, with every policy value, equals the code's."""
    subscription_resources = [
        n for t, n, _ in blocks("resource") if t == "google_pubsub_subscription"
    ]
    assert subscription_resources == ["subscriptions"]
    assert terraform_subscriptions(document, "push") == _code_subscriptions()


def test_eventarc_mode_gives_consumers_the_code_policies(document: dict[str, Any]) -> None:
    """In eventarc mode dead-letter subscriptions are ours and consumers get the code's policies."""
    code = _code_subscriptions()
    created = terraform_subscriptions(document, "eventarc")
    assert created == {n: s for n, s in code.items() if s.dead_letter is None}
    patches = eventarc_patches(document)
    consumers = {n: s for n, s in code.items() if s.dead_letter is not None}
    assert set(patches) == set(consumers)
    for name, sub in consumers.items():
        assert sub.dead_letter is not None
        assert patches[name] == {
            "ack-deadline": str(sub.ack_deadline_s),
            "message-retention-duration": f"{sub.retention_s}s",
            "min-retry-delay": f"{sub.retry.minimum_backoff_s}s",
            "max-retry-delay": f"{sub.retry.maximum_backoff_s}s",
            "dead-letter-topic": sub.dead_letter.topic,
            "max-delivery-attempts": str(sub.dead_letter.max_delivery_attempts),
        }


@pytest.mark.parametrize(
    ("field", "change"),
    [
        (
            "max_delivery_attempts",
            lambda s: s["dead_letter_policy"].update(max_delivery_attempts=7),
        ),
        ("ack_deadline", lambda s: s.update(ack_deadline_seconds=45)),
        ("retry", lambda s: s["retry_policy"].update(minimum_backoff="5s")),
        ("retention", lambda s: s.update(message_retention_duration="3600s")),
    ],
)
def test_a_drifted_policy_is_detected(document: dict[str, Any], field: str, change: Any) -> None:
    """A topology.json that disagrees with the code on one value no longer compares equal."""
    change(document["subscriptions"]["blueprint-consumer"])
    assert terraform_subscriptions(document, "push") != _code_subscriptions(), field


def test_a_subscription_only_in_terraform_is_detected(document: dict[str, Any]) -> None:
    """An extra subscription in topology.json no longer compares equal to the code."""
    extra = dict(document["subscriptions"]["dispatcher"])
    document["subscriptions"]["dispatcher-2"] = extra
    assert terraform_subscriptions(document, "push") != _code_subscriptions()


def test_every_consumer_subscription_targets_a_deployed_service(document: dict[str, Any]) -> None:
    """Each consumer subscription names a Cloud Run service that run.tf deploys."""
    variables = (TERRAFORM / "variables.tf").read_text(encoding="utf-8")
    image_keys = set(re.findall(r"^\s+(\w+)\s+= string$", variables, flags=re.MULTILINE))
    services = {s["service"] for s in document["subscriptions"].values() if s["service"]}
    assert services == {"blueprint", "dispatcher", "status"}
    assert services <= image_keys
