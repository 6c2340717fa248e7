"""The deployments control plane on real databases: policies, revisions, approvals, instances."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopwright.config import resolve_settings
from loopwright.errors import (
    AlreadyExists,
    ApprovalNotAllowed,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from loopwright.governance.users import UserService
from loopwright.registry.entities import ApprovalPolicy, ApprovalRule
from loopwright.registry.service import RegistryService
from loopwright.serving.deployments import (
    FORGET_INSTANCES_AFTER_S,
    HEARTBEAT_TIMEOUT_S,
    DeploymentService,
)
from loopwright.serving.entities import SHADOW, Deployment, Variant
from loopwright.store import schema as t
from loopwright.store.audit import events, verify_chain
from loopwright.store.home import Store, open_store

NO_POLICY = ApprovalPolicy(rules=())


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.dummy import DummyClassifier

    from loopwright.registry.packaging.package import save_model

    folder = tmp_path_factory.mktemp("pkg") / "model"
    save_model(DummyClassifier().fit([[0.0], [1.0]], [0, 1]), folder)
    return folder


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as s:
        users = UserService(s, actor="root")
        users.add("root", "admin")
        for name, role in [("ada", "editor"), ("bea", "approver"), ("cyd", "approver")]:
            users.add(name, role)
        yield s


@pytest.fixture
def clock() -> Clock:
    return Clock()


Registry = Callable[[str], RegistryService]


@pytest.fixture
def registry(store: Store, clock: Clock) -> Registry:
    return lambda actor: RegistryService(store, actor=actor, clock=clock)


@pytest.fixture
def service(store: Store, clock: Clock, registry: Registry, package: Path) -> DeploymentService:
    """ada's service; model ``free`` (no approvals) v1..v3 and ``guarded`` (the default
    policy: traffic protected) v1..v2, both registered by ada."""
    ada = registry("ada")
    ada.create_model("free", policy=NO_POLICY)
    ada.create_model("guarded")
    for _ in range(3):
        ada.register("free", package)
    for _ in range(2):
        ada.register("guarded", package)
    return DeploymentService(store, actor="ada", clock=clock)


def v(name: str, uri: str, weight: float = 1.0, role: str = "live") -> Variant:
    return Variant(name, uri, weight, role)


# --- policies -----------------------------------------------------------------------------------


def test_create_get_list_and_history(service: DeploymentService, store: Store) -> None:
    created = service.create("churn-api", "models:/free/1", description="churn scoring")
    assert (created.strategy, created.revision, created.description) == (
        "primary",
        1,
        "churn scoring",
    )
    assert created.variants == (v("primary", "models:/free/1"),)
    assert (created.created_by, created.updated_by) == ("ada", "ada")
    assert service.get("churn-api") == created
    service.create("another", "models:/free/latest")
    assert [d.name for d in service.list()] == ["another", "churn-api"]
    (first,) = service.history("churn-api")
    assert (first.revision, first.action, first.actor, first.strategy) == (
        1,
        "create",
        "ada",
        "primary",
    )
    actions = [e.action for e in events(store.db, subject_type="deployment")]
    assert actions == ["deployment.create", "deployment.create"]


def test_set_traffic_infers_the_strategy_and_normalises_weights(
    service: DeploymentService,
) -> None:
    service.create("api", "models:/free/1")
    canary = service.set_traffic(
        "api", [v("primary", "models:/free/1"), v("canary", "models:/free/2", 0.2)]
    )
    assert canary.strategy == "canary" and canary.revision == 2
    assert [(x.name, x.weight) for x in canary.live] == [("primary", 0.8), ("canary", 0.2)]
    ab = service.set_traffic(
        "api",
        [
            v("a", "models:/free/1", 3),
            v("b", "models:/free/2", 1),
            v("s", "models:/free/3", 0.1, SHADOW),
        ],
        sticky_header="X-User-Id",
    )
    assert ab.strategy == "ab" and ab.sticky_header == "X-User-Id"
    assert [(x.name, x.weight) for x in ab.live] == [("a", 0.75), ("b", 0.25)]
    assert ab.shadows == (v("s", "models:/free/3", 0.1, SHADOW),)
    huge = service.set_traffic(
        "api", [v("a", "models:/free/1", 1e308), v("b", "models:/free/2", 1e308)]
    )
    assert [x.weight for x in huge.live] == [0.5, 0.5]  # their sum overflows a float
    primary = service.set_traffic("api", [v("primary", "models:/free/3", 5)])
    assert primary.strategy == "primary" and primary.live[0].weight == 1.0
    assert [r.action for r in service.history("api")] == [
        "create",
        "set-traffic",
        "set-traffic",
        "set-traffic",
        "set-traffic",
    ]


@pytest.mark.parametrize(
    ("variants", "strategy", "header", "match"),
    [
        ([], None, None, "at least one variant"),
        ([v("primary", "models:/free/1"), v("primary", "models:/free/2")], None, None, "twice"),
        ([v("bad name", "models:/free/1")], None, None, "variant name"),
        ([v("primary", "models:/free/1", -1)], None, None, "must be > 0"),
        ([v("primary", "models:/free/1", float("nan"))], None, None, "finite"),
        ([v("primary", "models:/free/1", 10**400)], None, None, "finite"),  # past float's range
        (
            [v("a", "models:/free/1", 1e308), v("b", "models:/free/2", 1e-308)],
            None,
            None,
            "'b': weight 1e-308 is so small",
        ),
        (
            [v("primary", "models:/free/1"), v("s", "models:/free/2", 1.5, SHADOW)],
            None,
            None,
            r"\(0, 1\]",
        ),
        (
            [v("primary", "models:/free/1"), v("canary", "models:/free/2", 1.0)],
            None,
            None,
            "canary weight",
        ),
        ([v("primary", "models:/free/1", role="spare")], None, None, "role"),
        ([v("solo", "models:/free/1")], None, None, "at least two live"),
        ([v("primary", "models:/free/1")], "canary", None, "'primary' and 'canary'"),
        ([v("primary", "models:/free/1")], "blue-green", None, "not one of"),
        ([v("a", "models:/free/1"), v("b", "models:/free/2")], None, "X User", "header name"),
        ([v("primary", "models:/free/1")], None, "X-User-Id", "sticky header"),
        ([v("primary", "runs:/" + "0" * 32 + "/model")], None, None, "not a registry URI"),
        ([v("primary", "/tmp/some/folder")], None, None, "not a registry URI"),
        ([v("primary", "models:/free")], None, None, "malformed"),
        ([v("primary", "models:/free\ud800/1")], None, None, "surrogate"),
        ([v("primary", "models:/fr\x00ee/1")], None, None, "NUL"),
    ],
)
def test_bad_policies_are_refused_naming_the_fix(
    service: DeploymentService,
    variants: list[Variant],
    strategy: str | None,
    header: str | None,
    match: str,
) -> None:
    service.create("api", "models:/free/1")
    with pytest.raises(InvalidInput, match=match):
        service.set_traffic("api", variants, strategy=strategy, sticky_header=header)
    assert service.get("api").revision == 1


def test_missing_models_versions_aliases_and_names(service: DeploymentService) -> None:
    with pytest.raises(NotFound, match="registered model 'nope'"):
        service.create("api", "models:/nope/1")
    with pytest.raises(NotFound, match="has no version 9"):
        service.create("api", "models:/free/9")
    with pytest.raises(NotFound, match="no alias 'champion'"):
        service.create("api", "models:/free@champion")
    with pytest.raises(InvalidInput, match="deployment name"):
        service.create("../api", "models:/free/1")
    service.create("api", "models:/free/1")
    with pytest.raises(AlreadyExists, match="already exists"):
        service.create("api", "models:/free/2")
    with pytest.raises(NotFound, match="deployment 'other' does not exist; deployments: api"):
        service.get("other")
    with pytest.raises(NotFound, match="no alias 'gone'"):
        service.set_traffic(
            "api", [v("primary", "models:/free/1"), v("s", "models:/free@gone", 0.5, SHADOW)]
        )


# --- promote and rollback -----------------------------------------------------------------------


def test_promote_a_pinned_primary_takes_the_canarys_uri(service: DeploymentService) -> None:
    service.create("api", "models:/free/1")
    with pytest.raises(Conflict, match="no canary to promote"):
        service.promote("api")
    service.set_traffic(
        "api",
        [
            v("primary", "models:/free/1"),
            v("canary", "models:/free/2", 0.1),
            v("s", "models:/free/3", 0.5, SHADOW),
        ],
    )
    promoted = service.promote("api")
    assert promoted.strategy == "primary" and promoted.revision == 3
    assert promoted.variants == (
        v("primary", "models:/free/2"),
        v("s", "models:/free/3", 0.5, SHADOW),
    )
    assert service.history("api")[-1].action == "promote"


def test_promote_moves_the_alias_the_primary_follows(
    service: DeploymentService, registry: Registry
) -> None:
    registry("ada").set_alias("free", "prod", 1)
    service.create("api", "models:/free@prod")
    service.set_traffic(
        "api", [v("primary", "models:/free@prod"), v("canary", "models:/free/3", 0.3)]
    )
    promoted = service.promote("api")
    assert promoted.variants == (v("primary", "models:/free@prod"),)
    assert registry("ada").resolve("free", "@prod").version == 3


def test_a_promotion_refused_moves_no_alias(
    service: DeploymentService,
    registry: Registry,
    store: Store,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another editor changes the canary while promote prepares: the promotion is refused and
    the alias stays where it was (it moved in a transaction of its own, to the old canary)."""
    registry("ada").set_alias("free", "prod", 1)
    service.create("api", "models:/free@prod")
    primary = v("primary", "models:/free@prod")
    service.set_traffic("api", [primary, v("canary", "models:/free/3", 0.3)])
    other = DeploymentService(store, actor="bea", clock=clock)
    read = service.get

    def read_then_someone_changes_it(name: str) -> Deployment:
        seen = read(name)
        other.set_traffic(name, [primary, v("canary", "models:/free/2", 0.3)])
        return seen

    monkeypatch.setattr(service, "get", read_then_someone_changes_it)
    with pytest.raises(Conflict, match="changed while promote was prepared"):
        service.promote("api")
    assert registry("ada").resolve("free", "@prod").version == 1
    monkeypatch.undo()
    assert service.promote("api").variants == (primary,)
    assert registry("ada").resolve("free", "@prod").version == 2
    moved = [e for e in events(store.db) if e.action == "model_alias.set"]
    assert [e.after["version"] for e in moved if e.after] == [1, 2]


def test_promote_through_a_protected_alias_waits_for_its_approval(
    service: DeploymentService, registry: Registry
) -> None:
    ada, bea = registry("ada"), registry("bea")
    request = ada.set_alias("guarded", "champion", 1).request
    assert request is not None
    bea.approve(request.id)
    service.create("api", "models:/guarded@champion")  # follows a protected alias: cleared
    traffic = _open_traffic_request(service, "api", "models:/guarded/2")
    registry("cyd").approve(traffic)  # version 2 may now take live traffic
    service.set_traffic(
        "api", [v("primary", "models:/guarded@champion"), v("canary", "models:/guarded/2", 0.2)]
    )
    with pytest.raises(
        PermissionDenied, match=r"alias 'champion' .* request (\w+) is pending"
    ) as info:
        service.promote("api")
    assert service.get("api").strategy == "canary"  # nothing changed yet
    alias_request = str(info.value).split("request ")[1].split(" ")[0]
    bea.approve(alias_request)
    promoted = service.promote("api")  # the alias is there now: only the canary goes
    assert promoted.strategy == "primary"
    assert promoted.variants == (v("primary", "models:/guarded@champion"),)
    assert ada.resolve("guarded", "@champion").version == 2


def test_rollback(service: DeploymentService) -> None:
    service.create("api", "models:/free/1")
    with pytest.raises(Conflict, match="nothing to roll back to"):
        service.rollback("api")
    service.set_traffic("api", [v("primary", "models:/free/1"), v("canary", "models:/free/2", 0.5)])
    service.set_traffic("api", [v("primary", "models:/free/3")])
    back = service.rollback("api")
    assert back.revision == 4 and back.strategy == "canary"
    assert back.variant("canary") == v("canary", "models:/free/2", 0.5)
    assert service.rollback("api", to_revision=1).variants == (v("primary", "models:/free/1"),)
    with pytest.raises(Conflict, match=r"no revision 9 to roll back to; revisions: 1\.\.5"):
        service.rollback("api", to_revision=9)
    with pytest.raises(Conflict, match="at revision 5 already"):
        service.rollback("api", to_revision=5)
    for bad in (0, -1, True, "1"):
        with pytest.raises(InvalidInput, match="to_revision must be a revision number"):
            service.rollback("api", to_revision=bad)  # type: ignore[arg-type]
    with pytest.raises(Conflict, match="no revision 4611686018427387904"):
        service.rollback("api", to_revision=2**62)
    history = service.history("api")
    assert [r.revision for r in history] == [1, 2, 3, 4, 5]
    assert [r.action for r in history][-2:] == ["rollback", "rollback"]


def test_delete_keeps_the_history_in_the_audit_log(
    service: DeploymentService, store: Store
) -> None:
    service.create("api", "models:/free/1")
    service.heartbeat("api", "http://127.0.0.1:9000", 42, "box")
    service.delete("api")
    with pytest.raises(NotFound):
        service.get("api")
    with pytest.raises(NotFound):
        service.delete("api")
    service.create("api", "models:/free/2")  # the name is free again, history restarts
    assert [r.revision for r in service.history("api")] == [1]
    assert verify_chain(store.db).ok
    deleted = [e for e in events(store.db) if e.action == "deployment.delete"]
    assert len(deleted) == 1 and deleted[0].before["variants"][0]["model_uri"] == "models:/free/1"


# --- approvals ----------------------------------------------------------------------------------


def _open_traffic_request(service: DeploymentService, name: str, uri: str) -> str:
    """Try to give ``uri`` live traffic; returns the id of the request the refusal names."""
    with pytest.raises(PermissionDenied, match="run the command again once approved") as info:
        if name in [d.name for d in service.list()]:
            service.set_traffic(name, [v("primary", uri)])
        else:
            service.create(name, uri)
    return str(info.value).split("request ")[1].split(")")[0]


def test_live_traffic_to_an_unapproved_version_opens_a_request(
    service: DeploymentService, registry: Registry, store: Store
) -> None:
    request_id = _open_traffic_request(service, "api", "models:/guarded/1")
    with pytest.raises(NotFound):
        service.get("api")  # not created
    assert _open_traffic_request(service, "api", "models:/guarded/1") == request_id  # reused
    request = registry("bea").get_request(request_id)
    assert (request.action, request.target, request.status, request.version) == (
        "traffic",
        "traffic",
        "pending",
        1,
    )
    with pytest.raises(ApprovalNotAllowed, match="separation of duties"):
        registry("ada").approve(request_id)  # ada registered it and asked
    registry("bea").approve(request_id)
    assert registry("bea").get_request(request_id).status == "approved"
    assert registry("ada").get_version("guarded", 1).aliases == ()  # nothing moved
    created = service.create("api", "models:/guarded/1")
    assert created.revision == 1
    # A shadow answers nobody: no approval needed for version 2 there.
    shadowed = service.set_traffic(
        "api", [v("primary", "models:/guarded/1"), v("s", "models:/guarded/2", 0.5, SHADOW)]
    )
    assert shadowed.revision == 2
    # Rolling back is checked the same way: revision 1 is still fine.
    assert service.rollback("api").revision == 3


def test_a_version_holding_a_protected_stage_needs_no_request(
    service: DeploymentService, registry: Registry
) -> None:
    request = registry("ada").transition_stage("guarded", 2, "Production")
    registry("bea").approve(request.id)
    assert service.create("api", "models:/guarded/2").revision == 1
    assert service.create("api2", "models:/guarded/Production").revision == 1


def test_live_traffic_may_not_follow_what_moves_without_approval(
    service: DeploymentService, registry: Registry
) -> None:
    """An unprotected alias, a stage or ``latest`` could later move live traffic to a version
    nobody cleared, so under a traffic rule a live variant may not follow one; a shadow may."""
    registry("ada").set_alias("guarded", "candidate", 2)
    registry("ada").transition_stage("guarded", 1, "Staging")
    for ref in ("@candidate", "/latest", "/Staging"):
        with pytest.raises(PermissionDenied, match="may follow only what its approval policy"):
            service.create("api", f"models:/guarded{ref}")
    with pytest.raises(NotFound):
        service.get("api")
    assert registry("bea").requests(model="guarded") == []  # refused, not queued for approval
    request = registry("ada").set_alias("guarded", "champion", 1).request
    assert request is not None
    registry("bea").approve(request.id)
    primary = v("primary", "models:/guarded@champion")
    assert service.create("api", "models:/guarded@champion").revision == 1
    shadow = v("s", "models:/guarded@candidate", 0.5, SHADOW)
    assert service.set_traffic("api", [primary, shadow]).revision == 2
    # Without a traffic rule, following any alias is the team's choice.
    registry("ada").set_alias("free", "candidate", 2)
    assert service.create("free-api", "models:/free@candidate").revision == 1


def test_rollback_to_an_unapproved_version_is_refused(
    service: DeploymentService, registry: Registry, store: Store
) -> None:
    registry("root").set_policy("free", ApprovalPolicy((ApprovalRule("traffic"),)))
    # Created under the rule: needs approval first.
    request_id = _open_traffic_request(service, "api", "models:/free/1")
    registry("bea").approve(request_id)
    service.create("api", "models:/free/1")
    second = _open_traffic_request(service, "api", "models:/free/2")
    registry("bea").approve(second)
    service.set_traffic("api", [v("primary", "models:/free/2")])
    with store.db.write() as conn:  # an approval revoked behind our back (say, by an admin)
        conn.execute(
            t.approval_requests.update()
            .where(t.approval_requests.c.id == request_id)
            .values(status="cancelled")
        )
    with pytest.raises(PermissionDenied, match="free version 1"):
        service.rollback("api")
    assert service.get("api").revision == 2


def test_no_policy_lets_anything_through(service: DeploymentService) -> None:
    assert service.create("api", "models:/free/3").revision == 1


# --- instances ----------------------------------------------------------------------------------


def test_heartbeats_list_recent_instances(service: DeploymentService, clock: Clock) -> None:
    service.create("api", "models:/free/1")
    first = service.heartbeat("api", "http://127.0.0.1:9000", 10, "box")
    service.heartbeat("api", "http://127.0.0.1:9001", 11, "box")
    clock.now += 5_000
    again = service.heartbeat("api", "http://127.0.0.1:9000", 10, "box")
    assert again.started_at == first.started_at and again.seen_at == clock.now
    assert [i.url for i in service.instances("api")] == [
        "http://127.0.0.1:9000",
        "http://127.0.0.1:9001",
    ]
    clock.now += HEARTBEAT_TIMEOUT_S * 1000 - 1000
    (alive,) = service.instances("api")
    assert alive.url == "http://127.0.0.1:9000" and alive.pid == 10
    restarted = service.heartbeat("api", "http://127.0.0.1:9000", 99, "box")
    assert restarted.started_at == clock.now  # a new process at the URL, however soon
    (listed,) = service.instances("api")
    assert listed == restarted
    for url, pid, host, match in [
        ("ftp://x", 1, "h", "http"),
        ("http://x", -1, "h", "pid"),
        ("http://x", True, "h", "pid"),
        ("http://x", 1, "", "host"),
    ]:
        with pytest.raises(InvalidInput, match=match):
            service.heartbeat("api", url, pid, host)
    with pytest.raises(NotFound):
        service.heartbeat("nope", "http://x", 1, "h")


def test_instances_silent_for_an_hour_are_forgotten(
    service: DeploymentService, store: Store, clock: Clock
) -> None:
    """A serve restarted on a new address (a container's new IP) leaves a row behind; the next
    heartbeat of the deployment removes rows silent past FORGET_INSTANCES_AFTER_S."""
    service.create("api", "models:/free/1")
    service.create("other", "models:/free/1")
    for n in range(3):
        service.heartbeat("api", f"http://10.0.0.{n}:8080", 7, f"pod-{n}")
    service.heartbeat("other", "http://10.0.1.1:8080", 7, "pod")
    clock.now += FORGET_INSTANCES_AFTER_S * 1000 - 1
    service.heartbeat("api", "http://10.0.0.9:8080", 7, "pod-9")

    def stored() -> list[str]:
        with store.db.read() as conn:
            urls = conn.execute(
                sa.select(t.deployment_instances.c.url).order_by(t.deployment_instances.c.url)
            ).scalars()
            return list(urls)

    assert len(stored()) == 5  # an hour not yet past
    clock.now += 2
    service.heartbeat("api", "http://10.0.0.9:8080", 7, "pod-9")
    # api's old rows are gone; other's row waits for other's next heartbeat.
    assert stored() == ["http://10.0.0.9:8080", "http://10.0.1.1:8080"]
    assert [i.url for i in service.instances("api")] == ["http://10.0.0.9:8080"]


# --- concurrency --------------------------------------------------------------------------------


def test_concurrent_changes_get_gap_free_revisions(
    service: DeploymentService, store: Store, clock: Clock
) -> None:
    service.create("api", "models:/free/1")
    errors: list[BaseException] = []

    def change(worker: int) -> None:
        mine = DeploymentService(store, actor=f"w{worker}", clock=clock)
        try:
            for i in range(8):
                weight = 0.1 + 0.1 * ((worker + i) % 8)
                mine.set_traffic(
                    "api", [v("primary", "models:/free/1"), v("canary", "models:/free/2", weight)]
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=change, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [r.revision for r in service.history("api")] == list(range(1, 34))
    assert service.get("api").revision == 33
    with store.db.read() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).where(t.audit_events.c.subject_type == "deployment")
        ).scalar_one()
    assert count == 33


def test_concurrent_creates_of_one_name_make_one_deployment(
    service: DeploymentService, store: Store, clock: Clock
) -> None:
    """The others get AlreadyExists (on PostgreSQL each found the name free, and the unique
    constraint's IntegrityError was a 500 over REST)."""

    def create(worker: int, name: str, start: threading.Barrier, outcomes: list[str]) -> None:
        mine = DeploymentService(store, actor=f"w{worker}", clock=clock)
        start.wait()
        try:
            mine.create(name, "models:/free/1")
            outcomes.append("created")
        except AlreadyExists:
            outcomes.append("exists")
        except BaseException as exc:
            outcomes.append(repr(exc))

    for name in ("race-1", "race-2", "race-3"):
        outcomes: list[str] = []
        start = threading.Barrier(4)
        threads = [
            threading.Thread(target=create, args=(n, name, start, outcomes)) for n in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["created", "exists", "exists", "exists"], outcomes
        assert [r.revision for r in service.history(name)] == [1]


def test_heartbeats_racing_deletes_see_the_deployment_or_not_found(
    service: DeploymentService, store: Store, clock: Clock
) -> None:
    """A heartbeat locks the deployment row, so a delete never leaves it inserting an instance
    of a deployment that is gone (on PostgreSQL: a foreign-key IntegrityError, a 500)."""
    stop = threading.Event()
    outcomes: list[str] = []

    def beat(worker: int) -> None:
        mine = DeploymentService(store, actor="serve", clock=clock)
        while not stop.is_set():
            try:
                mine.heartbeat("api", f"http://127.0.0.1:{9000 + worker}", worker, "box")
                outcomes.append("seen")
            except NotFound:
                outcomes.append("gone")
            except BaseException as exc:
                outcomes.append(repr(exc))

    threads = [threading.Thread(target=beat, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(20):
            service.create("api", "models:/free/1")
            service.delete("api")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert set(outcomes) <= {"seen", "gone"}, [o for o in outcomes if o not in ("seen", "gone")]
    with store.db.read() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(t.deployment_instances))
        assert left.scalar_one() == 0


def test_policies_take_a_traffic_rule_and_nothing_like_it(registry: Registry) -> None:
    root = registry("root")
    root.create_model("other")
    assert root.get_model("other").policy.rule_for("traffic") == ApprovalRule("traffic")
    changed = root.set_policy("other", ApprovalPolicy((ApprovalRule("traffic", approvals=2),)))
    assert changed.policy.rules == (ApprovalRule("traffic", approvals=2),)
    for target in ("traffic:x", "Traffic", "traffics"):
        with pytest.raises(InvalidInput, match="'traffic'"):
            root.set_policy("other", ApprovalPolicy((ApprovalRule(target),)))
