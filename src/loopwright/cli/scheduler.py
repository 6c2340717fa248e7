"""``loopwright scheduler``: fire due schedules and move loop iterations on, until stopped.

Several schedulers may run at once, on one machine or many, against one store or server: the
database's unique fire row lets exactly one of them start each job.
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from ._context import state
from ._output import console, emit_json, format_ms, handle_errors

if TYPE_CHECKING:
    from ..loop.entities import Fire

__all__ = ["register"]


def _print(fires: list[Fire]) -> None:
    out = console()
    for fire in fires:
        what = fire.detail or ""
        out.print(
            f"{format_ms(fire.fired_at)} {fire.schedule}: {fire.status} "
            f"(event {fire.event_key}) {what[:200]}",
            markup=False,
            soft_wrap=True,
        )


def scheduler(
    ctx: typer.Context,
    once: Annotated[
        bool,
        typer.Option("--once", help="Run one tick, wait for the pipelines it started, and exit."),
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, max=86_400, help="Seconds between ticks.")
    ] = 10.0,
    loops: Annotated[
        bool,
        typer.Option("--loops/--no-loops", help="Also move in-flight loop iterations on."),
    ] = True,
    monitors: Annotated[
        bool,
        typer.Option(
            "--monitors",
            help="Also run due monitors each tick (as monitors run-due), so their alerts fire "
            "drift triggers at once.",
        ),
    ] = False,
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="This scheduler's name on its fires (default: host:pid)."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="With --once: print the fires as JSON.")
    ] = False,
) -> None:
    """Fire due schedules (cron, interval, alerts, new dataset versions) until SIGINT/SIGTERM.

    Pipeline jobs run as their own processes and outlive a stopped scheduler.
    """
    from ..loop.scheduler import Scheduler
    from .schedules import fire_dict

    with handle_errors(), state(ctx).client() as client:
        runner = Scheduler(client, owner=owner, advance_loops=loops, run_monitors=monitors)
        if once:
            fired = runner.tick()
            runner.wait()
            fired = runner.outcomes(fired)
            if json_output:
                emit_json([fire_dict(f) for f in fired])
            else:
                _print(fired)
                console(stderr=True).print(f"{len(fired)} fire(s)", markup=False)
            return
        stop = threading.Event()

        def _stop(signum: int, _frame: object) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        console(stderr=True).print(
            f"scheduler {runner.owner} ticking every {interval:g} s; Ctrl-C to stop",
            markup=False,
            soft_wrap=True,
        )
        try:
            runner.run_forever(interval, stop, on_tick=lambda fired: _print(fired + runner.ended()))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if not runner.wait(timeout=0):
            console(stderr=True).print(
                "scheduler stopped; pipeline jobs still running go on (their fires stay "
                "'started'; `loopwright pipelines list` shows how they end)",
                markup=False,
            )


def register(app: typer.Typer) -> None:
    app.command("scheduler")(scheduler)
