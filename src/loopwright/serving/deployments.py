"""The deployments control plane: named endpoints and their traffic policies, stored and audited.

Every change (create, set-traffic, promote, rollback) writes a new revision row holding the full
policy and appends an audit event, in one transaction that locks the deployment's row first, so
revision numbers are gap-free per deployment. Serving processes read the policy and follow its
changes without restarting; they report themselves through :meth:`DeploymentService.heartbeat`.

Live traffic obeys the registry: when a model's approval policy has a ``traffic`` rule, a change
giving one of its versions live traffic is applied only if the version is approved for it (see
``registry.approvals``). Otherwise nothing changes, the approval request is opened (or the
pending one found) and :class:`~loopwright.errors.PermissionDenied` names it.

Example:
    >>> from sklearn.dummy import DummyClassifier
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.registry.packaging.package import save_model
    >>> from loopwright.registry.service import RegistryService
    >>> from loopwright.store.home import open_store
    >>> settings = resolve_settings(home="lw-doc-deployments", default_approval_policy="none")
    >>> store = open_store(settings)
    >>> _ = save_model(DummyClassifier().fit([[0.0], [1.0]], [0, 1]), "pkg")
    >>> _ = RegistryService(store).register("churn", "pkg")
    >>> _ = RegistryService(store).register("churn", "pkg")
    >>> deployments = DeploymentService(store)
    >>> deployments.create("churn-api", "models:/churn/1").strategy
    'primary'
    >>> one = Variant("primary", "models:/churn/1", 1)
    >>> two = Variant("canary", "models:/churn/2", 0.2)
    >>> [(v.name, v.weight) for v in deployments.set_traffic("churn-api", [one, two]).variants]
    [('primary', 0.8), ('canary', 0.2)]
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._ids import new_id, now_ms
from .._numbers import is_number
from ..errors import AlreadyExists, Conflict, InvalidInput, PermissionDenied
from ..registry.service import RegistryService
from ..store import limits
from ..store import schema as t
from ..store.audit import append_event
from ..store.named import named_row
from ..store.upsert import upsert
from ._traffic import Policy, check_name, check_policy, model_uri_of
from .entities import LIVE, Deployment, DeploymentRevision, ServingInstance, Variant

if TYPE_CHECKING:
    from ..store.home import Store

__all__ = ["FORGET_INSTANCES_AFTER_S", "HEARTBEAT_TIMEOUT_S", "DeploymentService"]

# A serving process heartbeats every few seconds; one silent for longer is not listed.
HEARTBEAT_TIMEOUT_S = 30
# Rows of instances silent this long are removed by the next heartbeat of their deployment:
# instances restarted on new addresses (a container's new IP) would otherwise pile up.
FORGET_INSTANCES_AFTER_S = 3600

_d, _rev, _inst = t.deployments.c, t.deployment_revisions.c, t.deployment_instances.c


class DeploymentService:
    """Create deployments, change their traffic, promote, roll back; record serving instances.

    Args:
        store: the metadata and blob stores.
        actor: who changes are recorded as (default: the store's user).
        clock: the time in UTC milliseconds (tests pass a fake one).
    """

    def __init__(
        self,
        store: Store,
        *,
        actor: str | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.store = store
        self.db = store.db
        self._actor = actor
        self._clock = clock or now_ms
        # Resolving URIs, clearing versions for traffic and moving aliases on promote are the
        # registry's, done as the same user.
        self._registry = RegistryService(store, actor=actor, clock=clock)

    # --- reading -------------------------------------------------------------------------------

    def get(self, name: str) -> Deployment:
        """The deployment called ``name`` as it is now."""
        with self.db.read() as conn:
            return _deployment(self._row(conn, name))

    def list(self) -> list[Deployment]:
        """Every deployment, by name."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(t.deployments).order_by(_d.name)).all()
        return [_deployment(row) for row in rows]

    def history(self, name: str) -> builtins.list[DeploymentRevision]:
        """Every revision of the deployment's traffic policy, oldest first."""
        with self.db.read() as conn:
            row = self._row(conn, name)
            revisions = conn.execute(
                sa.select(t.deployment_revisions)
                .where(_rev.deployment_id == row.id)
                .order_by(_rev.revision)
            ).all()
        return [_revision(name, r) for r in revisions]

    def instances(self, name: str) -> builtins.list[ServingInstance]:
        """The serving processes that reported themselves in the last ``HEARTBEAT_TIMEOUT_S``."""
        since = self._clock() - HEARTBEAT_TIMEOUT_S * 1000
        with self.db.read() as conn:
            row = self._row(conn, name)
            rows = conn.execute(
                sa.select(t.deployment_instances)
                .where(_inst.deployment_id == row.id, _inst.seen_at >= since)
                .order_by(_inst.url)
            ).all()
        return [ServingInstance(name, r.url, r.pid, r.host, r.started_at, r.seen_at) for r in rows]

    # --- changing ------------------------------------------------------------------------------

    def create(self, name: str, model_uri: str, *, description: str | None = None) -> Deployment:
        """A new deployment sending all traffic to ``model_uri`` (strategy ``primary``)."""
        check_name(name)
        if description is not None:
            limits.check_text(
                "deployment description", description, limit=limits.REGISTRY_TAG_VALUE
            )
        policy = check_policy([Variant("primary", model_uri, 1.0)])
        return self._change(name, policy, "create", description=description)

    def set_traffic(
        self,
        name: str,
        variants: Sequence[Variant],
        *,
        strategy: str | None = None,
        sticky_header: str | None = None,
        expect_revision: int | None = None,
    ) -> Deployment:
        """Replace the traffic policy (strategy inferred from the variants when not given);
        with ``expect_revision``, only if the deployment is still at that revision (else
        ``Conflict``): a read-modify-write such as the CLI's loses no concurrent change."""
        policy = check_policy(variants, strategy, sticky_header)
        return self._change(name, policy, "set-traffic", expect=expect_revision)

    def promote(self, name: str) -> Deployment:
        """Make the canary the primary (moving the alias the primary follows, if it follows one).

        If the primary follows an alias of the canary's model, the alias moves to the canary's
        version through the registry (a protected alias opens an approval request: this raises
        ``PermissionDenied`` naming it; promote again once approved). Otherwise the primary
        takes the canary's URI. Shadows stay.
        """
        current = self.get(name)
        if current.strategy != "canary":
            raise Conflict(
                f"deployment {name!r} has strategy {current.strategy!r} and no canary to "
                "promote; set one with set_traffic (primary and canary variants)"
            )
        primary, canary = current.variant("primary"), current.variant("canary")
        assert primary is not None and canary is not None  # what strategy canary means
        followed = model_uri_of(primary.model_uri, "primary")
        target = model_uri_of(canary.model_uri, "canary")
        assert followed.name is not None and target.name is not None and target.ref is not None
        alias = _alias_of(followed.ref or "")
        if alias is None or followed.name != target.name:
            variants = [Variant("primary", canary.model_uri, 1.0), *current.shadows]
            return self._change(name, check_policy(variants), "promote", expect=current.revision)
        model, ref = followed.name, target.ref

        def move_alias(conn: sa.Connection) -> str | None:
            """Moves the alias in the promotion's transaction, or says which request waits."""
            version, request = self._registry._promotion_alias(
                conn, model, alias, ref, comment=f"promote canary of deployment {name!r}"
            )
            if request is None:
                return None
            return (
                f"promoting deployment {name!r} moves alias {alias!r} of model {model!r} to "
                f"version {version}, which needs approval: request {request} is pending; run "
                "promote again once it is approved"
            )

        variants = [Variant("primary", primary.model_uri, 1.0), *current.shadows]
        return self._change(
            name, check_policy(variants), "promote", expect=current.revision, then=move_alias
        )

    def rollback(self, name: str, to_revision: int | None = None) -> Deployment:
        """Restore the traffic policy of ``to_revision`` (default: the one before the current).

        Only the policy comes back: a variant following an alias serves the version the alias
        points to now, so undoing a promote that moved the alias means moving it back too.
        """
        if to_revision is not None and (
            isinstance(to_revision, bool) or not isinstance(to_revision, int) or to_revision < 1
        ):
            raise InvalidInput(
                f"to_revision must be a revision number (1 or more), not {to_revision!r}"
            )
        with self.db.read() as conn:
            row = self._row(conn, name)
            target = row.revision - 1 if to_revision is None else to_revision
            if target < 1 or target > row.revision:
                raise Conflict(
                    f"deployment {name!r} is at revision {row.revision} and has no revision "
                    f"{target} to roll back to; revisions: 1..{row.revision}"
                    if to_revision is not None
                    else f"deployment {name!r} is at revision 1: there is nothing to roll back to"
                )
            if target == row.revision:
                raise Conflict(
                    f"deployment {name!r} is at revision {target} already; history lists the "
                    "revisions to roll back to"
                )
            old = conn.execute(
                sa.select(t.deployment_revisions).where(
                    _rev.deployment_id == row.id, _rev.revision == target
                )
            ).one()
        policy = Policy.from_json(old.strategy, old.policy_json)
        return self._change(name, policy, "rollback", expect=row.revision)

    def delete(self, name: str) -> None:
        """Remove the deployment (its history stays in the audit log)."""
        with self.db.write() as conn:
            row = self._row(conn, name, lock=True)
            conn.execute(t.deployment_instances.delete().where(_inst.deployment_id == row.id))
            conn.execute(t.deployment_revisions.delete().where(_rev.deployment_id == row.id))
            conn.execute(t.deployments.delete().where(_d.id == row.id))
            self._audit(conn, "deployment.delete", row.id, before=_snapshot(_deployment(row)))

    def heartbeat(self, name: str, url: str, pid: int, host: str) -> ServingInstance:
        """Record that a serving process at ``url`` serves deployment ``name`` now."""
        _check_instance(url, pid, host)
        now = self._clock()
        with self.db.write() as conn:
            row = self._row(conn, name, lock=True)  # not deleted under the insert
            known = conn.execute(
                sa.select(_inst.pid, _inst.started_at).where(
                    _inst.deployment_id == row.id, _inst.url == url
                )
            ).first()
            # The same URL served by a new process (a restart) starts a new instance; the
            # workers of one `serve --workers N` beat with the serve command's pid.
            started = known.started_at if known is not None and known.pid == pid else now
            values = {
                "deployment_id": row.id,
                "url": url,
                "pid": pid,
                "host": host,
                "started_at": started,
                "seen_at": now,
            }
            upsert(
                conn,
                t.deployment_instances,
                [values],
                update=["pid", "host", "started_at", "seen_at"],
            )
            conn.execute(
                t.deployment_instances.delete().where(
                    _inst.deployment_id == row.id,
                    _inst.seen_at < now - FORGET_INSTANCES_AFTER_S * 1000,
                )
            )
        return ServingInstance(name, url, pid, host, started, now)

    # --- internals -----------------------------------------------------------------------------

    def _actor_name(self) -> str:
        return self._actor or self.store.actor

    def _row(self, conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
        name, hint = check_name(name), "create one with create(name, model_uri)"
        return named_row(conn, t.deployments, name, what="deployment", hint=hint, lock=lock)

    def _change(
        self,
        name: str,
        policy: Policy,
        action: str,
        *,
        description: str | None = None,
        expect: int | None = None,
        then: Callable[[sa.Connection], str | None] | None = None,
    ) -> Deployment:
        """Store ``policy`` as the deployment's next revision, or raise ``PermissionDenied``
        (after committing the approval requests it opened) if a live version is not cleared.

        ``then`` runs in the same transaction once the policy is cleared (a promotion moves
        its alias there); a message it returns refuses the change, after the commit.
        """
        refusal: str | None = None
        try:
            with self.db.write() as conn:
                row = None if action == "create" else self._row(conn, name, lock=True)
                if row is None and conn.execute(sa.select(_d.id).where(_d.name == name)).first():
                    raise _exists(name)
                if expect is not None and row is not None and row.revision != expect:
                    raise Conflict(
                        f"deployment {name!r} changed while {action} was prepared (revision "
                        f"{expect} → {row.revision}); run {action} again"
                    )
                pending = self._clear(conn, policy)
                if not pending and then is not None:
                    refusal = then(conn)
                if not pending and refusal is None:
                    return self._store_revision(conn, name, row, policy, action, description)
        except sa.exc.IntegrityError:
            # Two creates of one name on PostgreSQL both find it free; the unique name decides.
            if action != "create":
                raise
            with self.db.read() as conn:
                if conn.execute(sa.select(_d.id).where(_d.name == name)).first() is None:
                    raise
            raise _exists(name) from None
        # Raised after the commit, so the requests stay open for approvers.
        if refusal is not None:
            raise PermissionDenied(refusal)
        listed = "; ".join(f"{what}: request {rid}" for what, rid in pending)
        raise PermissionDenied(
            f"deployment {name!r} not changed: live traffic needs approved model versions "
            f"({listed}); run the command again once approved (loopwright models approve "
            "REQUEST_ID, by another approver)"
        )

    def _clear(self, conn: sa.Connection, policy: Policy) -> builtins.list[tuple[str, str]]:
        """``(what, request id)`` for each live variant whose version is not cleared for
        traffic; every variant's URI must resolve (``NotFound`` says what is missing)."""
        pending = []
        parsed = [(model_uri_of(v.model_uri, v.name), v) for v in policy.variants]
        # Models are locked in name order, so two changes never wait on each other's models.
        for uri, variant in sorted(parsed, key=lambda pair: (pair[0].name or "", pair[1].name)):
            assert uri.name is not None and uri.ref is not None
            version, request = self._registry._traffic_clearance(
                conn, uri.name, uri.ref, live=variant.role == LIVE
            )
            if request is not None:
                pending.append((f"variant {variant.name!r}, {uri.name} version {version}", request))
        return pending

    def _store_revision(
        self,
        conn: sa.Connection,
        name: str,
        row: Any,
        policy: Policy,
        action: str,
        description: str | None,
    ) -> Deployment:
        now, actor = self._clock(), self._actor_name()
        document = policy.to_json()
        if row is None:
            deployment_id, revision = new_id(), 1
            conn.execute(
                t.deployments.insert(),
                {
                    "id": deployment_id,
                    "name": name,
                    "description": description,
                    "strategy": policy.strategy,
                    "policy_json": document,
                    "revision": revision,
                    "created_by": actor,
                    "created_at": now,
                    "updated_by": actor,
                    "updated_at": now,
                },
            )
            before = None
        else:
            deployment_id, revision = row.id, row.revision + 1
            conn.execute(
                t.deployments.update()
                .where(_d.id == row.id)
                .values(
                    strategy=policy.strategy,
                    policy_json=document,
                    revision=revision,
                    updated_by=actor,
                    updated_at=now,
                )
            )
            before = _snapshot(_deployment(row))
        conn.execute(
            t.deployment_revisions.insert(),
            {
                "deployment_id": deployment_id,
                "revision": revision,
                "strategy": policy.strategy,
                "policy_json": document,
                "action": action,
                "actor": actor,
                "created_at": now,
            },
        )
        stored = _deployment(
            conn.execute(sa.select(t.deployments).where(_d.id == deployment_id)).one()
        )
        self._audit(
            conn, f"deployment.{action}", deployment_id, before=before, after=_snapshot(stored)
        )
        return stored

    def _audit(
        self,
        conn: sa.Connection,
        action: str,
        subject: str,
        *,
        before: Any = None,
        after: Any = None,
    ) -> None:
        append_event(
            conn,
            actor=self._actor_name(),
            action=action,
            subject_type="deployment",
            subject_id=subject,
            before=before,
            after=after,
        )


def _alias_of(ref: str) -> str | None:
    """The alias a model reference follows (``@champion`` or ``champion``), else None (a
    version number, ``latest`` or a stage)."""
    if ref.startswith("@"):
        return ref[1:]
    if is_number(ref) or ref.lower() in {"latest", "none", "staging", "production", "archived"}:
        return None
    return ref


def _exists(name: str) -> AlreadyExists:
    return AlreadyExists(
        f"deployment {name!r} already exists; change it with set_traffic or pick another name"
    )


def _deployment(row: Any) -> Deployment:
    policy = Policy.from_json(row.strategy, row.policy_json)
    return Deployment(
        name=row.name,
        strategy=policy.strategy,
        variants=policy.variants,
        sticky_header=policy.sticky_header,
        revision=row.revision,
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


def _revision(name: str, row: Any) -> DeploymentRevision:
    policy = Policy.from_json(row.strategy, row.policy_json)
    return DeploymentRevision(
        deployment=name,
        revision=row.revision,
        strategy=policy.strategy,
        variants=policy.variants,
        sticky_header=policy.sticky_header,
        action=row.action,
        actor=row.actor,
        created_at=row.created_at,
    )


def _snapshot(deployment: Deployment) -> dict[str, Any]:
    """What an audit event records of a deployment: its name, revision and full policy."""
    return {
        "name": deployment.name,
        "revision": deployment.revision,
        "strategy": deployment.strategy,
        "sticky_header": deployment.sticky_header,
        "variants": [
            {"name": v.name, "model_uri": v.model_uri, "weight": v.weight, "role": v.role}
            for v in deployment.variants
        ],
    }


def _check_instance(url: object, pid: object, host: object) -> None:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 500:
        raise InvalidInput(
            f"instance URL {str(url)[:80]!r} must be an http:// or https:// URL of at most 500 "
            "characters (e.g. 'http://10.0.0.5:8080')"
        )
    limits.check_text("instance URL", url, limit=500)
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 <= pid < 2**31:
        raise InvalidInput(f"instance pid must be a process id (0..2^31-1), not {pid!r}")
    limits.check_text("instance host", host, limit=255)
