"""Trace monitors over the REST API (a real server on 127.0.0.1, auth on, SQLite and
PostgreSQL): the remote client reads the same entities as the embedded service; viewers read,
editors create and run; a pass runs as its caller (the rollback it starts is the caller's alias
move, judged by the prompt's policy); bad bodies are 4xx naming the field."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from _trace_monitor_world import BAD, GOOD, HOUR_MS, T0, record_calls

import loopwright as lw
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput, NotFound, PermissionDenied
from loopwright.monitoring.llm_entities import AlertAction, TraceSelection
from loopwright.registry.entities import ApprovalPolicy
from loopwright.tracing.service import TracingService
from test_public_api import live_server

BASELINE = f"window:{T0}/{T0 + HOUR_MS}"
PROD = TraceSelection(prompt="support@production")


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass
class Api:
    url: str
    tokens: dict[str, str]
    local: Client  # embedded on the server's stores
    ed: Client  # remote, an editor
    vic: Client  # remote, a viewer

    def call(self, user: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {} if user is None else {"Authorization": f"Bearer {self.tokens[user]}"}
        url = f"{self.url}/api/v1/monitoring/trace-monitors{path}"
        return httpx.request(method, url, headers=headers, timeout=60, **kwargs)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def api(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_database: Callable[[], AbstractContextManager[str]],
) -> Iterator[Api]:
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService

    root = tmp_path_factory.mktemp(f"llm-api-{request.param}")
    with ExitStack() as stack:
        if request.param == "sqlite":
            db_uri = f"sqlite:///{root / 'store.db'}"
        else:
            db_uri = stack.enter_context(pg_database())

        def settings(user: str | None = None) -> Any:
            return resolve_settings(
                home=root / "server", db_uri=db_uri, blob_uri=str(root / "blobs"), user=user
            )

        local = stack.enter_context(Client(settings("ed")))
        users = UserService(local.store, actor="root")
        for name, role in (("root", "admin"), ("ed", "editor"), ("vic", "viewer")):
            users.add(name, role)
        tokens = TokenService(local.store, actor="root")
        secrets = {name: tokens.create(name).secret for name in ("ed", "vic")}
        prompts = local.prompts
        prompts.create("support", policy=ApprovalPolicy(rules=()))
        prompts.register("support", "Answer briefly: {{ question }}")
        prompts.register("support", "Answer: {{ question }}")
        prompts.set_alias("support", "production", 1)
        prompts.set_alias("support", "production", 2)
        tracing = TracingService(local.store)
        record_calls(tracing, start_ms=T0, answers=GOOD)
        record_calls(tracing, start_ms=T0 + HOUR_MS, answers=BAD, latency_ms=4_000)
        url = stack.enter_context(live_server(settings()))
        ed = stack.enter_context(lw.connect(url, token=secrets["ed"], home=root / "ed"))
        vic = stack.enter_context(lw.connect(url, token=secrets["vic"], home=root / "vic"))
        yield Api(url, secrets, local, ed, vic)


def test_remote_trace_monitor_round_trip_and_rollback_as_the_caller(api: Api) -> None:
    created = api.ed.monitoring.create_trace_monitor(
        "support-quality", traces=PROD, scorers=["builtin:max_length:{\"limit\": 60}"],
        baseline=BASELINE, alerts=["drift_share>0.3", "score.max_length<0.5"],
        actions=[AlertAction("rollback", on="score.max_length<0.5")],
    )  # fmt: skip
    assert created == api.local.monitoring.get_trace_monitor("support-quality")
    assert created == api.vic.monitoring.get_trace_monitor("support-quality")
    assert created.monitor.created_by == "ed" and created.actions[0].alias == "production"
    # The common monitor routes show it too.
    assert api.vic.monitoring.get("support-quality") == created.monitor
    with pytest.raises(PermissionDenied):
        api.vic.monitoring.run_trace_monitor("support-quality", at=at(T0 + HOUR_MS))

    calm = api.ed.monitoring.run_trace_monitor("support-quality", at=at(T0 + HOUR_MS))
    assert calm.run.status == "ok" and calm.actions == ()
    assert calm.scoring is not None and calm.scoring.scored == 40
    hit = api.ed.monitoring.run_trace_monitor("support-quality", at=at(T0 + 2 * HOUR_MS))
    assert hit.run.drift is not None and hit.run.drift.dataset_drift
    assert [(a.kind, a.status, a.to_version) for a in hit.actions] == [("rollback", "applied", 1)]
    assert api.local.prompts.get("support").aliases["production"] == 1
    moves = [e for e in api.local.audit.events(subject_type="prompt_alias")]
    assert moves[-1].action == "prompt_alias.set" and moves[-1].actor == "ed"  # as the caller
    history = api.vic.monitoring.trace_monitor_history("support-quality")
    assert history == api.local.monitoring.trace_monitor_history("support-quality")
    assert [h.run.id for h in history] == [hit.run.id, calm.run.id]
    assert history[0].actions == hit.actions and history[0].figures == hit.figures
    # The generic run route runs it too (as a scheduler's run_due would).
    plain = api.ed.monitoring.run("support-quality", at=at(T0 + 2 * HOUR_MS))
    assert plain.status == "no_data"  # version 1 serves the alias now: none of its traces


def test_bad_bodies_and_unknown_names(api: Api) -> None:
    good: dict[str, Any] = {
        "name": "m1",
        "traces": {"gateway_route": "support-chat"},
        "scorers": ["builtin:json_valid"],
        "baseline": BASELINE,
    }
    assert api.call("vic", "POST", "", json=good).status_code == 403
    assert api.call(None, "POST", "", json=good).status_code == 401
    bad: list[tuple[dict[str, Any], str]] = [
        ({"sample_rate": "all"}, "sample_rate"),
        ({"scorers": []}, "scorers"),
        ({"traces": {"route": "x"}}, "route"),
        ({"actions": [{"kind": "delete"}]}, "kind"),
        ({"extra": 1}, "extra"),
    ]
    for change, field in bad:
        answer = api.call("ed", "POST", "", json={**good, **change})
        assert answer.status_code in (400, 422), (change, answer.text)
        assert field in answer.text
    answer = api.call("ed", "POST", "", json={**good, "traces": {}})
    assert answer.status_code == 400 and "needs a selection" in answer.text
    assert api.call("ed", "POST", "", content=b"{not json").status_code in (400, 422)
    with pytest.raises(InvalidInput, match="sample_rate"):
        api.ed.monitoring.create_trace_monitor(
            "m2", traces=TraceSelection(gateway_route="x"), scorers=["builtin:json_valid"],
            sample_rate=2, baseline=BASELINE,
        )  # fmt: skip
    with pytest.raises(NotFound):
        api.vic.monitoring.get_trace_monitor("ghost")
    assert api.call("vic", "GET", "/..%2F..%2Fetc").status_code in (400, 404)
    with pytest.raises(InvalidInput, match="monitor name"):
        api.vic.monitoring.get_trace_monitor("../../etc")
