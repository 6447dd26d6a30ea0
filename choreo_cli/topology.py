"""`choreo topology`: show the Pub/Sub and storage topology, or apply it to a project.

This module is the composition root for the admin clients; ``choreo stack up`` reuses it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import typer

from producers.topology_apply import apply_all
from schemas.errors import ChoreoError, ConfigurationError
from schemas.settings import PubSubSettings, StorageSettings
from schemas.topology import build_topology

app = typer.Typer(help="The Pub/Sub and storage topology: show it, apply it.", no_args_is_help=True)

EXIT_ERROR = 1
EXIT_DRIFT = 3


def print_report(report: Any) -> None:
    """One line per resource: kind, name, what happened, and any difference found."""
    for line in report.lines():
        typer.echo(line)


@app.command("apply")
def apply_command(
    project: str = typer.Option(
        "", help="Project id (default: PUBSUB_PROJECT_ID or GOOGLE_CLOUD_PROJECT)."
    ),
    buckets: bool = typer.Option(
        True, help="Also create the buckets (on STORAGE_EMULATOR_HOST, or Cloud Storage)."
    ),
) -> None:
    """Create the topology's topics, subscriptions and buckets; exit 3 when drift remains."""
    pubsub = PubSubSettings()
    storage = StorageSettings()
    project_id = project or pubsub.project_id
    target = f"emulator {pubsub.emulator_host}" if pubsub.emulator_host else "Google Cloud"
    typer.echo(f"applying the topology to project {project_id!r} on {target}")
    try:
        report = apply_all(
            build_topology(storage),
            project_id,
            pubsub_host=pubsub.emulator_host,
            storage_host=storage.emulator_host if buckets else None,
        )
    except ConfigurationError as error:
        skip = (
            "; or pass --no-buckets to apply only the topics and subscriptions" if buckets else ""
        )
        typer.echo(f"error: {error}{skip}", err=True)
        raise typer.Exit(EXIT_ERROR) from error
    except ChoreoError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_ERROR) from error
    print_report(report)
    if report.drifted:
        typer.echo("drift remains: see the lines marked 'drifted'", err=True)
        raise typer.Exit(EXIT_DRIFT)


@app.command("show")
def show_command(
    as_json: bool = typer.Option(False, "--json", help="Print the topology as JSON."),
) -> None:
    """Print the topology: topics with their event types, subscriptions with their policies."""
    topology = build_topology(StorageSettings())
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(topology), indent=2))
        return
    typer.echo("topics")
    for topic in topology.topics:
        carries = ", ".join(topic.event_types) or f"dead letters of {topic.dead_letter_of}"
        typer.echo(f"  {topic.name:<38} {carries}")
    typer.echo("subscriptions")
    for sub in topology.subscriptions:
        dead_letter = (
            f"dead-letter {sub.dead_letter.topic} after {sub.dead_letter.max_delivery_attempts}"
            if sub.dead_letter
            else "no dead-letter"
        )
        typer.echo(
            f"  {sub.name:<38} on {sub.topic:<34} ack {sub.ack_deadline_s}s, "
            f"backoff {sub.retry.minimum_backoff_s}-{sub.retry.maximum_backoff_s}s, "
            f"retention {sub.retention_s}s, {dead_letter}, "
            f"ordering {'on' if sub.enable_message_ordering else 'off'}"
        )
    typer.echo("buckets")
    for bucket in topology.buckets:
        typer.echo(f"  {bucket}")
