"""Feature definitions on the metadata store: plan, apply, read and resolve them.

Each version is an immutable row of ``feature_definitions`` identified by the digest of its
spec. Applying is all or nothing in one write transaction that re-plans against the rows it
sees; two processes applying at once meet on the unique (kind, name, version) and the loser
plans again, so the same new spec gives one version and two different ones give two.
"""

from __future__ import annotations

import builtins
import functools
import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from .._ids import new_id
from ..errors import Conflict, InvalidInput, NotFound
from ..store import limits
from ..store import schema as t
from ..store.home import Store
from ..store.named import KNOWN_NAMES, Audited
from ._plan import Planned, plan_changes, spec_diff
from ._selection import Selection, parse_refs, select
from ._validate import check_name, validate
from .entities import ApplyPlan, FeatureDefinition
from .protocol import FeatureSelection
from .spec import KINDS, Kind, Spec, canonical_json

__all__ = ["DefinitionStore"]

_d = t.feature_definitions.c
_REF = re.compile(r"(?P<name>[^@]+)(?:@v(?P<version>\d+))?")
MAX_VERSION = limits.INT32_MAX  # feature_definitions.version is an INTEGER
# A concurrent apply of the same names makes the loser re-plan; each round one applier wins, so
# this many appliers at once all get through.
_APPLY_ATTEMPTS = 20
_UNPINNED_SECONDS = 1.0  # how long an unpinned selection is reused before it is resolved again
_CACHED_SELECTIONS = 1024  # distinct selections kept; callers asking for more start it afresh


class DefinitionStore(Audited):
    """Versioned feature definitions (the definition half of ``client.features``)."""

    _subject_type = "feature_definition"

    def __init__(
        self, store: Store, *, actor: str | None = None, clock: Callable[[], int] | None = None
    ) -> None:
        super().__init__(store, actor=actor, clock=clock)
        self._lock = threading.Lock()
        # (selection, full names) -> (selection, monotonic time checked, pinned, generation)
        self._resolved: dict[tuple[Any, bool], tuple[Selection, float, bool, int]] = {}

    # --- writing -----------------------------------------------------------------------------

    def plan(self, specs: Sequence[Spec]) -> ApplyPlan:
        """What :meth:`apply` would do (validated; nothing written)."""
        with self.db.read() as conn:
            planned = self._plan(conn, specs)
        return ApplyPlan(tuple(p.change for p in planned), applied=False)

    def apply(self, specs: Sequence[Spec], *, force: bool = False) -> ApplyPlan:
        """Store the changed specs as new versions, all or nothing; audited.

        Raises:
            InvalidInput: a malformed spec or an unknown reference.
            Conflict: a breaking change without ``force`` (each reason listed).
        """
        for attempt in range(_APPLY_ATTEMPTS):
            try:
                with self.db.write() as conn:
                    planned = self._plan(conn, specs)
                    _refuse_breaking(planned, force)
                    for item in planned:
                        if item.change.change != "unchanged":
                            self._insert(conn, item)
                break
            except sa.exc.IntegrityError:
                if attempt == _APPLY_ATTEMPTS - 1:
                    raise Conflict(
                        "feature definitions changed while applying, again and again; apply once "
                        "more"
                    ) from None
                time.sleep(random.uniform(0, 0.01 * (attempt + 1)))  # apart from the winner
        if any(item.change.change != "unchanged" for item in planned):
            with self._lock:
                self._resolved.clear()
        return ApplyPlan(tuple(p.change for p in planned), applied=True)

    def _plan(self, conn: sa.Connection, specs: Sequence[Spec]) -> list[Planned]:
        newest = self._newest(conn)
        valid = validate(specs, lambda kind, name: newest.get((kind, name)))
        return plan_changes(valid, newest)

    def _insert(self, conn: sa.Connection, item: Planned) -> None:
        change = item.change
        row_id = new_id()
        conn.execute(
            t.feature_definitions.insert().values(
                id=row_id,
                kind=change.kind,
                name=change.name,
                version=change.to_version,
                digest=item.digest,
                spec_json=canonical_json(item.spec),
                created_by=self._actor_name(),
                created_at=self._clock(),
            )
        )
        before = None if change.from_version is None else {"version": change.from_version}
        after = {"kind": change.kind, "name": change.name, "version": change.to_version}
        self._audit(
            conn, "feature_definition.apply", row_id, before=before,
            after={**after, "digest": item.digest, "breaking": list(change.breaking)},
        )  # fmt: skip

    # --- reading -----------------------------------------------------------------------------

    def list(self, kind: Kind | None = None) -> builtins.list[FeatureDefinition]:
        """The newest version of every definition (of ``kind``), by kind then name."""
        _check_kind(kind)
        with self.db.read() as conn:
            newest = self._newest(conn)
        order = {k: i for i, k in enumerate(KINDS)}
        found = [d for d in newest.values() if kind is None or d.kind == kind]
        return sorted(found, key=lambda d: (order[d.kind], d.name))

    def get(self, ref: str, *, kind: Kind | None = None) -> FeatureDefinition:
        """A version by ``name`` (the newest) or ``name@vN``.

        Raises:
            NotFound: no such name or version (the known ones listed).
            InvalidInput: a malformed ref, or a name of several kinds without ``kind``.
        """
        name, version = _parse_ref(ref)
        _check_kind(kind)
        check_name("definition", name)
        query = sa.select(t.feature_definitions).where(_d.name == name)
        if kind is not None:
            query = query.where(_d.kind == kind)
        if version is not None:
            query = query.where(_d.version == version)
        else:  # the newest of each kind of that name (several kinds: ambiguous)
            newest = sa.select(_d.kind, sa.func.max(_d.version).label("version")).where(
                _d.name == name
            )
            top = newest.group_by(_d.kind).subquery()
            query = query.join(top, sa.and_(_d.kind == top.c.kind, _d.version == top.c.version))
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        if len(rows) == 1:
            return _definition(rows[0])
        versions = self.versions(name, kind=kind)  # NotFound or InvalidInput, naming what exists
        known = ", ".join(f"v{d.version}" for d in reversed(versions))
        raise NotFound(f"{versions[0].kind.replace('_', ' ')} {name!r} has no v{version}; {known}")

    def versions(self, name: str, *, kind: Kind | None = None) -> builtins.list[FeatureDefinition]:
        """Every version of ``name`` (of ``kind``), newest first.

        Raises:
            NotFound: no definition has this name (the known names listed).
            InvalidInput: the name is used by several kinds and ``kind`` is None.
        """
        _check_kind(kind)
        check_name("definition", name)
        query = sa.select(t.feature_definitions).where(_d.name == name)
        if kind is not None:
            query = query.where(_d.kind == kind)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(_d.version.desc())).all()
            if not rows:
                known = self._known_names(conn, kind)
        if not rows:
            what = "feature definition" if kind is None else kind.replace("_", " ")
            raise NotFound(
                f"{what} {name!r} does not exist; known: {', '.join(known) or 'none'} "
                "(loopwright features apply)"
            )
        kinds = sorted({row.kind for row in rows})
        if len(kinds) > 1:
            raise InvalidInput(
                f"{name!r} names definitions of several kinds ({', '.join(kinds)}); pass kind="
            )
        return [_definition(row) for row in rows]

    def diff(
        self, name: str, a: int | None = None, b: int | None = None, *, kind: Kind | None = None
    ) -> str:
        """A unified diff of two versions' specs (default: the previous and the newest; for a
        single version, from nothing)."""
        versions = {d.version: d for d in self.versions(name, kind=kind)}
        newest = max(versions)
        b = newest if b is None else b
        a = (b - 1 if b > 1 else None) if a is None else a
        for number in (a, b):
            if number is not None and number not in versions:
                known = ", ".join(f"v{v}" for v in sorted(versions))
                raise NotFound(f"{name!r} has no v{number}; {known}")
        old = None if a is None else versions[a].spec
        return spec_diff(old, versions[b].spec, f"{name}@v{a}" if a else "", f"{name}@v{b}")

    def generation(self) -> int:
        """A number that changes whenever a definition is applied (in any process): versions
        are only ever added, so their count."""
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.feature_definitions))
                       .scalar_one())  # fmt: skip

    # --- resolving ---------------------------------------------------------------------------

    def resolve(self, features: FeatureSelection, *, full_feature_names: bool = False) -> Selection:
        """The views, features and columns of a service ref (``svc``, ``svc@v2``) or feature
        refs (``view:feature``, ``view:*``).

        Cached: a pinned service ref for good (its version never changes), anything else for at
        most a second, so an apply is seen within a second (then it is resolved again only if
        a definition was applied since).

        Raises:
            NotFound: an unknown service, view or version.
            InvalidInput: an unknown feature, a malformed ref, or two features sharing an output
                column without ``full_feature_names``.
        """
        if not isinstance(features, str) and not all(isinstance(f, str) for f in features):
            raise InvalidInput("features must be a service ref or a list of view:feature refs")
        key = (features if isinstance(features, str) else tuple(features), full_feature_names)
        now = time.monotonic()
        with self._lock:
            cached = self._resolved.get(key)
        if cached is not None and (cached[2] or now - cached[1] < _UNPINNED_SECONDS):
            return cached[0]
        with self.db.one_read():
            generation = self.generation()
            if cached is not None and cached[3] == generation:
                selection, pinned = cached[0], False  # nothing applied since: still current
            else:
                selection, pinned = self._resolve(features, full_feature_names)
        with self._lock:
            if len(self._resolved) >= _CACHED_SELECTIONS:
                self._resolved.clear()
            self._resolved[key] = (selection, now, pinned, generation)
        return selection

    def _resolve(self, features: FeatureSelection, full_names: bool) -> tuple[Selection, bool]:
        # Each definition once per resolve: views share entities, on-demand views their sources.
        view_of, entity_of = functools.cache(self._view), functools.cache(self._entity)
        if isinstance(features, str):
            if ":" in features:
                raise InvalidInput(
                    f"{features!r} is a feature ref: pass a list ([{features!r}]) or a service ref"
                )
            service = self.get(features, kind="feature_service")
            picks = [(p["view"], p["features"]) for p in service.spec["features"]]
            selection = select(
                picks, service=service.ref, pins=service.spec.get("pins", {}),
                full_feature_names=full_names, view=view_of, entity=entity_of,
            )  # fmt: skip
            return selection, "@" in features
        pairs = parse_refs(features)
        grouped: dict[str, list[str]] = {}
        for view, feature in pairs:
            grouped.setdefault(view, []).append(feature)
        selection = select(
            list(grouped.items()), service=None, pins=None, full_feature_names=full_names,
            view=view_of, entity=entity_of,
        )  # fmt: skip
        return selection, False

    def _view(self, name: str, version: int | None) -> FeatureDefinition:
        ref = name if version is None else f"{name}@v{version}"
        try:
            return self.get(ref, kind="feature_view")
        except NotFound:
            pass
        try:
            return self.get(ref, kind="on_demand_feature_view")
        except NotFound:
            views = [
                d.name for d in self.list() if d.kind in ("feature_view", "on_demand_feature_view")
            ]
            raise NotFound(
                f"feature view {ref!r} does not exist; views: {', '.join(views) or 'none'} "
                "(loopwright features apply)"
            ) from None

    def _entity(self, name: str) -> FeatureDefinition:
        return self.get(name, kind="entity")

    def _newest(self, conn: sa.Connection) -> dict[tuple[str, str], FeatureDefinition]:
        """The newest version of every definition, by (kind, name)."""
        top = (
            sa.select(_d.kind, _d.name, sa.func.max(_d.version).label("version"))
            .group_by(_d.kind, _d.name)
            .subquery()
        )
        query = sa.select(t.feature_definitions).join(
            top,
            sa.and_(_d.kind == top.c.kind, _d.name == top.c.name, _d.version == top.c.version),
        )
        return {(row.kind, row.name): _definition(row) for row in conn.execute(query)}

    def _known_names(self, conn: sa.Connection, kind: Kind | None) -> builtins.list[str]:
        query = sa.select(_d.name).distinct().order_by(_d.name).limit(KNOWN_NAMES)
        if kind is not None:
            query = query.where(_d.kind == kind)
        return [str(name) for name in conn.execute(query).scalars()]


def _definition(row: Any) -> FeatureDefinition:
    spec: Mapping[str, Any] = json.loads(row.spec_json)
    return FeatureDefinition(
        id=row.id, kind=row.kind, name=row.name, version=row.version, digest=row.digest,
        spec=spec, created_by=row.created_by, created_at=row.created_at,
    )  # fmt: skip


def _parse_ref(ref: str) -> tuple[str, int | None]:
    match = _REF.fullmatch(ref) if isinstance(ref, str) else None
    if match is None:
        raise InvalidInput(f"definition ref {ref!r} is not name or name@vN (e.g. driver_stats@v2)")
    version = match.group("version")
    if version is None:
        return match.group("name"), None
    # Compared as text first (int() refuses over 4,300 digits), and bounded: past 32 bits the
    # database driver overflows (OverflowError embedded, a 500 over HTTP) instead of finding none.
    if len(version.lstrip("0")) > len(str(MAX_VERSION)) or int(version) > MAX_VERSION:
        name, shown = match.group("name")[:200], version[:30] + ("..." if len(version) > 30 else "")
        raise InvalidInput(
            f"definition ref '{name}@v{shown}': the version is past the largest possible "
            f"(v{MAX_VERSION}); name an existing version ({name}@v1) or {name} for the newest"
        )
    return match.group("name"), int(version)


def _check_kind(kind: object) -> None:
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")


def _refuse_breaking(planned: Sequence[Planned], force: bool) -> None:
    breaking = [p.change for p in planned if p.change.breaking]
    if breaking and not force:
        reasons = "; ".join(
            f"{c.kind.replace('_', ' ')} {c.name!r}: {reason}"
            for c in breaking
            for reason in c.breaking
        )
        raise Conflict(
            f"breaking change(s): {reasons}. Readers of the old version may fail; "
            "apply with --force (force=True) to apply anyway"
        )
