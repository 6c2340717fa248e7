"""Settings and stores for one CLI invocation, built from the global options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from ..client import Client
    from ..config import Settings

__all__ = ["CREATING_COMMANDS", "READING_COMMANDS", "CliState", "state"]

# Commands that only read a store: on a store that does not exist they say so and create
# nothing (a mistyped --home or --db-uri must not leave an empty store behind). Every other
# command that opens a store is listed in CREATING_COMMANDS; a test checks each command is in
# exactly one of them (or opens no store).
READING_COMMANDS = frozenset(
    {
        "audit log",
        "audit verify",
        "traces list",
        "traces show",
        "traces export",
        "data list",
        "data log",
        "data show",
        "data diff",
        "data status",
        "data checkout",
        "data push",
        "experiments list",
        "runs list",
        "runs show",
        "runs compare",
        "models list",
        "models show",
        "models versions",
        "models requests",
        "models card",
        "models sbom",
        "deployments list",
        "deployments show",
        "deployments history",
        "deployments compare",
        "monitors list",
        "monitors show",
        "monitors history",
        "monitors report",
        "monitors alerts",
        "monitors references list",
        "monitors traces show",
        "monitors traces history",
        "pipelines list",
        "pipelines show",
        "prompts list",
        "prompts show",
        "prompts versions",
        "prompts diff",
        "prompts format",
        "prompts requests",
        "features list",
        "features show",
        "features diff",
        "features historical",
        "features online",
        "features materializations",
        "features freshness",
        "features skew",
        "gates results",
        "labels show",
        "lineage",
        "schedules list",
        "schedules show",
        "loops list",
        "loops show",
        "eval datasets",
        "eval records",
        "eval results",
        "eval scorers list",
        "loops history",
        "scheduler",  # fires schedules of a store that must exist (a typo must not make one)
        "serve",  # a package folder alone needs no store; see cli/serve.py
        "predict",  # likewise a folder over files; see cli/predict.py
        "users list",
        "tokens list",
        "gateway routes list",
        "gateway routes show",
        "gateway secrets list",
        "gateway usage",
    }
)
CREATING_COMMANDS = frozenset(
    {
        "init",
        "gc",
        "server",
        "ui",
        "db upgrade",
        "db current",  # reports an empty or missing database as such, creating nothing
        "data add",
        "data tag",
        "data alias",
        "data pull",
        "data validate",
        "experiments create",
        "experiments rename",
        "experiments delete",
        "experiments restore",
        "runs delete",
        "runs restore",
        "models register",
        "models alias",
        "models stage",
        "models approve",
        "models reject",
        "models policy",
        "models rename",
        "models pin",
        "models import-mlflow",
        "deployments create",
        "deployments set-traffic",
        "deployments promote",
        "deployments rollback",
        "deployments delete",
        "gateway routes create",
        "gateway routes update",
        "gateway routes delete",
        "gateway secrets set",
        "gateway secrets delete",
        "monitors create",
        "monitors run",
        "monitors run-due",
        "monitors backfill",
        "monitors delete",
        "monitors references build",
        "monitors traces create",
        "monitors traces run",
        "pipelines run",
        "prompts register",
        "prompts set-alias",
        "prompts delete-alias",
        "prompts approve",
        "prompts reject",
        "pipelines resume",
        "features apply",
        "features materialize",
        "gates check",
        "labels import",
        "schedules create",
        "schedules enable",
        "schedules disable",
        "schedules delete",
        "loops create",
        "loops pause",
        "loops resume",
        "loops delete",
        "loops trigger",
        "loops tick",
        "eval add",
        "eval run",
        "eval agreement",
        "eval scorers request-approval",
        "eval scorers approve",
        "users add",
        "users set-role",
        "users disable",
        "tokens create",
        "tokens revoke",
    }
)


@dataclass
class CliState:
    home: str | None = None
    db_uri: str | None = None
    blob_uri: str | None = None
    log_level: str | None = None
    user: str | None = None
    server: str | None = None
    token: str | None = None
    data_link: str | None = None  # `data add --link`
    command: str = ""  # the subcommand's path, e.g. "data list"

    def settings(self) -> Settings:
        from .._logging import configure_logging
        from ..config import resolve_settings

        settings = resolve_settings(
            home=self.home,
            db_uri=self.db_uri,
            blob_uri=self.blob_uri,
            log_level=self.log_level,
            user=self.user,
            server_uri=self.server,
            token=self.token,
            data_link=self.data_link,
        )
        configure_logging(settings.log_level)
        if settings.is_embedded and self.command in READING_COMMANDS:
            from ..store.home import require_store

            require_store(settings)
        return settings

    def local_settings(self, command: str) -> Settings:
        """Settings for a command that works on the stores themselves, never through a server."""
        from ..errors import ConfigError

        settings = self.settings()
        if not settings.is_embedded:
            raise ConfigError(
                f"`loopwright {command}` works on the stores directly, not through a server "
                f"({settings.server_uri}); run it where the server's store is, without --server "
                "or LOOPWRIGHT_SERVER_URI"
            )
        return settings

    def client(self) -> Client:
        from ..client import Client

        return Client(self.settings())


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = CliState()
        ctx.find_root().obj = obj
    names = []
    current: Any = ctx  # a click context; its parents are not typer's subclass
    while current.parent is not None:
        names.append(current.info_name or "")
        current = current.parent
    obj.command = " ".join(reversed(names))
    return obj
