"""The three consumers as deployables: each one's handler and the subscription its worker reads.

``python -m consumers.<package> [serve|worker]`` runs one (:func:`main`): ``serve`` (the default,
what the images run) answers Pub/Sub push and Eventarc deliveries on ``HTTP_HOST:PORT`` with
``GET /healthz``; ``worker`` streams the subscription. ``choreo serve|worker NAME`` runs the same
through the command line. All settings come from the environment (``.env.example``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.errors import ChoreoError

EXIT_ERROR = 1


@dataclass(frozen=True)
class Service:
    """A consumer as a deployable: its handler's composition root and its subscription."""

    handler: str
    subscription: str


SERVICES: dict[str, Service] = {
    "blueprint": Service(
        "consumers.blueprint_consumer.app:blueprint_consumer", "blueprint-consumer"
    ),
    "dispatcher": Service("consumers.dispatcher.app:dispatcher", "dispatcher"),
    "status": Service("consumers.status_recorder.app:status_recorder", "status-recorder"),
}


def run(name: str, mode: str) -> int:
    """Serve or pull for consumer ``name``; the exit code. ChoreoError for a bad configuration."""
    from consumers.runtime.bootstrap import run_http, run_worker  # noqa: PLC0415
    from schemas.topology import build_topology  # noqa: PLC0415

    service = SERVICES[name]
    if mode == "worker":
        build_topology().subscription(service.subscription)  # names a renamed subscription early
        return run_worker(service.handler, service.subscription)
    return run_http(service.handler)


def main(name: str, argv: Sequence[str] | None = None) -> int:
    """``python -m consumers.<package> [serve|worker]``; a bad configuration is one line, exit 1."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {SERVICES[name].handler.split('.app:')[0]}",
        description=f"The {name} consumer.",
    )
    parser.add_argument(
        "mode",
        nargs="?",
        default="serve",
        choices=("serve", "worker"),
        help="serve: push / Eventarc endpoint on PORT (default); worker: pull the subscription",
    )
    args = parser.parse_args(argv)
    try:
        return run(name, args.mode)
    except ChoreoError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
