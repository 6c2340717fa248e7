"""The gateway's control plane: routes and secrets stored and audited, usage read back.

Routes are named (the ``model`` callers send) and changed whole: each change checks the new
configuration (``gateway.config``), bumps the revision and appends an audit event in the same
transaction; a route may only name secrets that exist. Secrets are encrypted before they are
stored and never leave the service except to the gateway's own upstream calls; events and
answers show a mask. Usage rows are written in batches by the gateway (``_record_usage``) and
summed here per route, target and user.

Example:
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.store.home import open_store
    >>> gateway = GatewayService(open_store(resolve_settings(home="lw-doc-gateway")))
    >>> gateway.set_secret("vllm-key", "sk-local-0123456789abcdef").mask
    '****cdef'
    >>> gateway.create_route("chat", {"targets": [{"name": "primary", "model": "llama",
    ...     "base_url": "http://127.0.0.1:8000/v1", "secret": "vllm-key"}]}).revision
    1
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._ids import new_id
from ..errors import AlreadyExists, Conflict, InvalidInput, NotFound
from ..store import limits
from ..store import schema as t
from ..store.named import Audited, named_row
from ._crypto import Cipher, mask
from .config import (
    check_route,
    check_route_name,
    check_secret_name,
    config_from_json,
    config_to_dict,
)
from .entities import GatewayRoute, RouteConfig, SecretInfo, UsageRecord, UsageSummary
from .prompt_targets import check_prompts

if TYPE_CHECKING:
    from ..store.home import Store

__all__ = ["MAX_SECRET", "GatewayService"]

MAX_SECRET = 8192
GROUPS = ("route", "target", "user")
_r, _s, _u = t.gateway_routes.c, t.gateway_secrets.c, t.gateway_usage.c


class GatewayService(Audited):
    """Routes, secrets and usage of the LLM gateway on the stores.

    Args:
        store: the metadata store (and its home, which may hold the secret key).
        actor: who changes are recorded as (default: the store's user).
        clock: UTC milliseconds (tests pass a fake one).
    """

    _subject_type = "gateway_route"

    def __init__(
        self, store: Store, *, actor: str | None = None, clock: Callable[[], int] | None = None
    ) -> None:
        super().__init__(store, actor=actor, clock=clock)
        self._cipher = Cipher(store.settings.home)

    # --- routes --------------------------------------------------------------------------------

    def create_route(self, name: str, config: Mapping[str, Any]) -> GatewayRoute:
        """A new route ``name`` with ``config`` (see ``gateway.config``)."""
        check_route_name(name)
        checked = check_route(config)
        check_prompts(self.store, checked)
        now, actor = self._clock(), self._actor_name()
        with self.db.write() as conn:
            self._check_secrets(conn, checked)
            exists = conn.execute(sa.select(_r.id).where(_r.name == name)).first()
            if exists is not None:
                raise AlreadyExists(
                    f"gateway route {name!r} already exists; change it with update_route "
                    "(`loopwright gateway routes update`)"
                )
            doc = config_to_dict(checked)
            conn.execute(
                t.gateway_routes.insert().values(
                    id=new_id(), name=name, config_json=json.dumps(doc, sort_keys=True),
                    revision=1, created_by=actor, created_at=now, updated_by=actor,
                    updated_at=now,
                )
            )  # fmt: skip
            self._audit(conn, "gateway.route.create", name, after=doc)
        return GatewayRoute(name, checked, 1, actor, now, actor, now)

    def update_route(
        self, name: str, config: Mapping[str, Any], *, expect_revision: int | None = None
    ) -> GatewayRoute:
        """Replace the route's configuration; with ``expect_revision``, only if it is still at
        that revision (else ``Conflict``)."""
        checked = check_route(config)
        check_prompts(self.store, checked)
        now, actor = self._clock(), self._actor_name()
        with self.db.write() as conn:
            self._check_secrets(conn, checked)
            row = self._row(conn, name, lock=True)
            if expect_revision is not None and row.revision != expect_revision:
                raise Conflict(
                    f"gateway route {name!r} is at revision {row.revision}, not "
                    f"{expect_revision}; read it again and reapply your change"
                )
            doc = config_to_dict(checked)
            conn.execute(
                t.gateway_routes.update()
                .where(_r.id == row.id)
                .values(config_json=json.dumps(doc, sort_keys=True), revision=row.revision + 1,
                        updated_by=actor, updated_at=now)
            )  # fmt: skip
            self._audit(
                conn, "gateway.route.update", name, before=json.loads(row.config_json), after=doc
            )
        return GatewayRoute(
            name, checked, row.revision + 1, row.created_by, row.created_at, actor, now
        )

    def delete_route(self, name: str) -> None:
        """Remove the route (its usage rows stay)."""
        with self.db.write() as conn:
            row = self._row(conn, name, lock=True)
            conn.execute(t.gateway_routes.delete().where(_r.id == row.id))
            self._audit(conn, "gateway.route.delete", name, before=json.loads(row.config_json))

    def get_route(self, name: str) -> GatewayRoute:
        with self.db.read() as conn:
            return _route(self._row(conn, name))

    def list_routes(self) -> builtins.list[GatewayRoute]:
        """Every route, by name."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(t.gateway_routes).order_by(_r.name)).all()
        return [_route(row) for row in rows]

    def _row(self, conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
        check_route_name(name)
        return named_row(
            conn, t.gateway_routes, name, what="gateway route", lock=lock,
            hint="create one with `loopwright gateway routes create`",
        )  # fmt: skip

    def _check_secrets(self, conn: sa.Connection, config: RouteConfig) -> None:
        if not config.secrets:
            return
        known = set(
            conn.execute(sa.select(_s.name).where(_s.name.in_(sorted(config.secrets)))).scalars()
        )
        missing = sorted(config.secrets - known)
        if missing:
            raise NotFound(
                f"the route names secret(s) {missing} that do not exist; store them first with "
                "`loopwright gateway secrets set NAME`"
            )

    # --- secrets -------------------------------------------------------------------------------

    def set_secret(self, name: str, value: str) -> SecretInfo:
        """Store (or replace) secret ``name``, encrypted; the answer shows only its mask."""
        check_secret_name(name)
        if not isinstance(value, str) or not value or len(value) > MAX_SECRET:
            raise InvalidInput(f"secret {name!r}: the value must be 1-{MAX_SECRET} characters")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            # It goes into an Authorization header, where a newline would split the request.
            raise InvalidInput(f"secret {name!r}: the value holds control characters (newline?)")
        shown, now, actor = mask(value), self._clock(), self._actor_name()
        ciphertext = self._cipher.encrypt(value)
        with self.db.write() as conn:
            row = conn.execute(sa.select(t.gateway_secrets).where(_s.name == name)).first()
            if row is None:
                conn.execute(
                    t.gateway_secrets.insert().values(
                        id=new_id(), name=name, ciphertext=ciphertext, mask=shown,
                        created_by=actor, created_at=now, updated_by=actor, updated_at=now,
                    )
                )  # fmt: skip
                created_by, created_at = actor, now
            else:
                conn.execute(
                    t.gateway_secrets.update()
                    .where(_s.id == row.id)
                    .values(ciphertext=ciphertext, mask=shown, updated_by=actor, updated_at=now)
                )
                created_by, created_at = row.created_by, row.created_at
            self._audit(
                conn, "gateway.secret.set", name, after={"mask": shown}, kind="gateway_secret"
            )
        return SecretInfo(name, shown, created_by, created_at, actor, now)

    def list_secrets(self) -> builtins.list[SecretInfo]:
        """Every secret's name and mask, by name."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(t.gateway_secrets).order_by(_s.name)).all()
        return [
            SecretInfo(r.name, r.mask, r.created_by, r.created_at, r.updated_by, r.updated_at)
            for r in rows
        ]

    def delete_secret(self, name: str) -> None:
        """Remove secret ``name``; refused while a route names it."""
        check_secret_name(name)
        with self.db.write() as conn:
            row = named_row(
                conn, t.gateway_secrets, name, what="gateway secret",
                hint="store one with `loopwright gateway secrets set`",
            )  # fmt: skip
            users = [
                r.name
                for r in conn.execute(sa.select(_r.name, _r.config_json)).all()
                if name in config_from_json(r.config_json).secrets
            ]
            if users:
                raise Conflict(
                    f"secret {name!r} is used by gateway route(s) {sorted(users)}; change them "
                    "first"
                )
            conn.execute(t.gateway_secrets.delete().where(_s.id == row.id))
            self._audit(conn, "gateway.secret.delete", name, kind="gateway_secret")

    def _secret_values(self, names: Iterable[str]) -> dict[str, str]:
        """The decrypted values of ``names`` (the gateway's upstream calls only)."""
        wanted = sorted(set(names))
        if not wanted:
            return {}
        with self.db.read() as conn:
            rows = conn.execute(sa.select(_s.name, _s.ciphertext).where(_s.name.in_(wanted))).all()
        return {r.name: self._cipher.decrypt(r.ciphertext, r.name) for r in rows}

    def _routes_and_secrets(self) -> tuple[dict[str, GatewayRoute], dict[str, str]]:
        """Every route and the secrets they name, as the gateway's cache holds them."""
        routes = {route.name: route for route in self.list_routes()}
        names = {s for route in routes.values() for s in route.config.secrets}
        return routes, self._secret_values(names)

    # --- usage ---------------------------------------------------------------------------------

    def _record_usage(self, records: Sequence[UsageRecord]) -> None:
        """Write ``records`` in one transaction (the gateway's batched writer)."""
        if not records:
            return
        rows = [
            {"id": r.id, "route": r.route, "target": r.target, "user_name": r.user,
             "endpoint": r.endpoint, "status": r.status, "prompt_tokens": r.prompt_tokens,
             "completion_tokens": r.completion_tokens, "estimated": r.estimated,
             "cost_usd": r.cost_usd, "latency_ms": r.latency_ms, "stream": r.stream,
             "trace_id": r.trace_id, "created_at": r.created_at}
            for r in records
        ]  # fmt: skip
        with self.db.write() as conn:
            conn.execute(t.gateway_usage.insert(), rows)

    def usage(
        self,
        *,
        route: str | None = None,
        user: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        group_by: Sequence[str] = GROUPS,
    ) -> builtins.list[UsageSummary]:
        """Requests, tokens, cost and latency summed per group (any of route, target, user),
        optionally for one route or user and between two times (UTC ms, until exclusive)."""
        for key, value in (("since_ms", since_ms), ("until_ms", until_ms)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int)
                or not 0 <= value <= limits.INT64_MAX
            ):  # fmt: skip
                raise InvalidInput(f"usage {key} must be UTC milliseconds (0..2**63-1)")
        unknown = sorted(set(group_by) - set(GROUPS))
        if unknown:
            raise InvalidInput(f"usage group_by {unknown} unknown; use some of {list(GROUPS)}")
        column = {"route": _u.route, "target": _u.target, "user": _u.user_name}
        keys = [column[g] for g in GROUPS if g in group_by]
        query = sa.select(
            *keys,
            sa.func.count().label("requests"),
            sa.func.sum(sa.case((_u.status >= 400, 1), else_=0)).label("errors"),
            sa.func.coalesce(sa.func.sum(_u.prompt_tokens), 0).label("prompt"),
            sa.func.coalesce(sa.func.sum(_u.completion_tokens), 0).label("completion"),
            sa.func.sum(sa.case((_u.estimated, 1), else_=0)).label("estimated"),
            sa.func.coalesce(sa.func.sum(_u.cost_usd), 0.0).label("cost"),
            sa.func.avg(_u.latency_ms).label("latency"),
        )
        if route is not None:
            query = query.where(_u.route == route)
        if user is not None:
            query = query.where(_u.user_name == user)
        if since_ms is not None:
            query = query.where(_u.created_at >= since_ms)
        if until_ms is not None:
            query = query.where(_u.created_at < until_ms)
        if keys:
            query = query.group_by(*keys).order_by(*keys)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        out = []
        for row in rows:
            values = row._mapping
            if not values["requests"]:
                continue
            out.append(
                UsageSummary(
                    route=values.get("route"), target=values.get("target"),
                    user=values.get("user_name"), requests=int(values["requests"]),
                    errors=int(values["errors"] or 0), prompt_tokens=int(values["prompt"]),
                    completion_tokens=int(values["completion"]),
                    estimated_requests=int(values["estimated"] or 0),
                    cost_usd=float(values["cost"]), mean_latency_ms=float(values["latency"]),
                )
            )  # fmt: skip
        return out

    def _day_totals(
        self, route: str, user: str, since_ms: int, until_ms: int | None = None
    ) -> tuple[int, float]:
        """Tokens and cost of ``user`` on ``route`` in ``[since_ms, until_ms)`` (a budget's
        start; a seed's ticket: later rows are counted in memory)."""
        query = sa.select(
            sa.func.coalesce(sa.func.sum(_u.prompt_tokens + _u.completion_tokens), 0),
            sa.func.coalesce(sa.func.sum(_u.cost_usd), 0.0),
        ).where(_u.route == route, _u.user_name == user, _u.created_at >= since_ms)
        if until_ms is not None:
            query = query.where(_u.created_at < until_ms)
        with self.db.read() as conn:
            row = conn.execute(query).one()
        return int(row[0]), float(row[1])


def _route(row: Any) -> GatewayRoute:
    return GatewayRoute(
        row.name, config_from_json(row.config_json), row.revision, row.created_by,
        row.created_at, row.updated_by, row.updated_at,
    )  # fmt: skip
