"""``choreo``: the root command. Each area registers its sub-commands from its own module.

Area modules import their heavy dependencies inside the commands, so ``choreo --help`` and the
contract commands stay fast and work with any extra installed. An error that escapes a command
ends as one line and an exit code (``choreo_cli.errors``).
"""

from __future__ import annotations

from choreo_cli import (
    analyze,
    blueprint,
    db,
    dlq,
    moves,
    plan,
    rejected,
    request,
    services,
    stack,
    tasks,
    topology,
    warmup,
)
from choreo_cli.demo import command as demo_command
from choreo_cli.errors import ChoreoTyper
from choreo_cli.render import render
from choreo_cli.status import status

app = ChoreoTyper(
    name="choreo",
    help="Turn a song, or a sentence describing a dance, into a choreographed dance video.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(blueprint.app, name="blueprint")
app.add_typer(db.app, name="db")
app.add_typer(dlq.app, name="dlq")
app.add_typer(moves.app, name="moves")
app.add_typer(request.app, name="request")
app.add_typer(stack.app, name="stack")
app.add_typer(tasks.app, name="tasks")
app.add_typer(topology.app, name="topology")
app.command("analyze")(analyze.analyze)
app.command("plan")(plan.plan)
app.command("render")(render)
app.command("rejected")(rejected.rejected)
app.command("status")(status)
app.command("worker")(services.worker)
app.command("serve")(services.serve)
app.command("relay")(services.relay)
app.command("runner")(services.runner)
app.command("demo")(demo_command.demo)
app.command("warmup")(warmup.warmup)


if __name__ == "__main__":  # pragma: no cover
    app()
