"""The root command: global options and the command groups."""

from __future__ import annotations

from typing import Annotated

import typer

from . import audit as audit_commands
from . import data as data_commands
from . import db as db_commands
from . import deployments as deployment_commands
from . import evaluation as evaluation_commands
from . import experiments as experiment_commands
from . import features as feature_commands
from . import gates as gate_commands
from . import gateway as gateway_commands
from . import home as home_commands
from . import labels as label_commands
from . import lineage as lineage_commands
from . import loops as loop_commands
from . import models as model_commands
from . import monitors as monitor_commands
from . import pipelines as pipeline_commands
from . import predict as predict_commands
from . import predictions as prediction_commands
from . import prompts as prompt_commands
from . import runs as run_commands
from . import scheduler as scheduler_commands
from . import schedules as schedule_commands
from . import serve as serve_commands
from . import server as server_commands
from . import tokens as token_commands
from . import traces as trace_commands
from . import ui as ui_commands
from . import users as user_commands
from ._context import CliState
from ._group import RootGroup

__all__ = ["app", "run"]

app = typer.Typer(
    name="loopwright",
    help="Loopwright: versioned data, experiment tracking and a model registry with approvals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    cls=RootGroup,
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"loopwright {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        str | None, typer.Option("--home", help="Loopwright home folder (LOOPWRIGHT_HOME).")
    ] = None,
    db_uri: Annotated[
        str | None, typer.Option("--db-uri", help="Metadata database URL (LOOPWRIGHT_DB_URI).")
    ] = None,
    blob_uri: Annotated[
        str | None,
        typer.Option("--blob-uri", help="Blob store folder or URL (LOOPWRIGHT_BLOB_URI)."),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="Who your changes are recorded as (LOOPWRIGHT_USER)."),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option("--server", help="Talk to a Loopwright server (LOOPWRIGHT_SERVER_URI)."),
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="API token for --server (LOOPWRIGHT_TOKEN).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback when a command fails.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    ctx.obj = CliState(
        home=home,
        db_uri=db_uri,
        blob_uri=blob_uri,
        log_level="DEBUG" if verbose else None,
        user=user,
        server=server,
        token=token,
    )


home_commands.register(app)
server_commands.register(app)
ui_commands.register(app)
serve_commands.register(app)
predict_commands.register(app)
lineage_commands.register(app)
scheduler_commands.register(app)
app.add_typer(db_commands.app, name="db")
app.add_typer(experiment_commands.experiments_app, name="experiments")
app.add_typer(run_commands.runs_app, name="runs")
app.add_typer(data_commands.app, name="data")
app.add_typer(model_commands.app, name="models")
app.add_typer(deployment_commands.app, name="deployments")
app.add_typer(prediction_commands.app, name="predictions")
app.add_typer(monitor_commands.app, name="monitors")
app.add_typer(pipeline_commands.app, name="pipelines")
app.add_typer(prompt_commands.app, name="prompts")
app.add_typer(feature_commands.app, name="features")
app.add_typer(gateway_commands.app, name="gateway")
app.add_typer(gate_commands.app, name="gates")
app.add_typer(schedule_commands.app, name="schedules")
app.add_typer(loop_commands.app, name="loops")
app.add_typer(evaluation_commands.app, name="eval")
app.add_typer(label_commands.app, name="labels")
app.add_typer(user_commands.app, name="users")
app.add_typer(token_commands.app, name="tokens")
app.add_typer(audit_commands.app, name="audit")
app.add_typer(trace_commands.app, name="traces")


def run() -> None:
    app()
