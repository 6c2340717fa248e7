"""What a server runs of the scorers an editor registers over REST (reviewer R1's attacks: a code
scorer naming ``os:abort``, a judge sending ``$ENV[api_key_env]`` to an endpoint of its choice),
run by a trace-monitor pass inside the server, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from typing import Any

import eval_scorers
import httpx
import pytest
from _judge_stub import JudgeStub, serve_in_thread

from loopwright.config import resolve_settings
from loopwright.errors import ConfigError
from loopwright.evaluation.scorers import Scorer

API = "/api/v1"
_CANARY = "LW_TEST_CANARY_SECRET"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def http(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_database: Callable[[], AbstractContextManager[str]],
) -> Iterator[httpx.Client]:
    """A server that may import code scorers from ``eval_scorers`` only."""
    from loopwright.server.app import create_app

    root = tmp_path_factory.mktemp(f"hosted-{request.param}")
    with ExitStack() as stack:
        db_uri = (
            f"sqlite:///{root / 'db'}"
            if request.param == "sqlite"
            else stack.enter_context(pg_database())
        )
        settings = resolve_settings(
            home=root / "home", db_uri=db_uri, user="ada", scorer_modules="eval_scorers"
        )
        url = stack.enter_context(serve_in_thread(create_app(settings, auth=False)))
        yield stack.enter_context(httpx.Client(base_url=url, timeout=30))


def _trace(http: httpx.Client) -> None:
    now = time.time_ns()
    span = {
        "traceId": os.urandom(16).hex(),
        "spanId": os.urandom(8).hex(),
        "name": "root",
        "startTimeUnixNano": str(now - 10**9),
        "endTimeUnixNano": str(now),
        "attributes": [
            {"key": "mlflow.spanInputs", "value": {"stringValue": '{"q": 1}'}},
            {"key": "mlflow.spanOutputs", "value": {"stringValue": '"two words"'}},
        ],
    }
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    answer = http.post("/v1/traces", json=body, headers={"x-mlflow-experiment-id": "0"})
    assert answer.status_code == 200, answer.text


def _register(http: httpx.Client, **body: Any) -> str:
    name = f"s{uuid.uuid4().hex[:10]}"
    answer = http.post(f"{API}/evaluation/scorers", json={"name": name, **body})
    assert answer.status_code == 201, answer.text
    return f"{name}/{answer.json()['version']}"


def _monitor_pass(http: httpx.Client, scorer: str) -> httpx.Response:
    _trace(http)
    name = f"m{uuid.uuid4().hex[:10]}"
    body = {
        "name": name,
        "traces": {"experiment_ids": ["0"]},
        "scorers": [scorer],
        "baseline": "window:1700000000000/1700000001000",
    }
    created = http.post(f"{API}/monitoring/trace-monitors", json=body)
    assert created.status_code == 201, created.text
    return http.post(f"{API}/monitoring/trace-monitors/{name}/runs", json={})


def _refused(answer: httpx.Response, *fragments: str) -> None:
    text = answer.text
    assert answer.status_code >= 400 or '"failed"' in text or "error" in text, text
    for fragment in fragments:
        assert fragment in text, text


@pytest.mark.parametrize("reference", ["os:abort", "os:getpid", "builtins:print"])
def test_a_code_scorer_outside_the_allowed_modules_is_not_imported(
    http: httpx.Client, reference: str
) -> None:
    module, _, attr = reference.partition(":")
    import importlib

    digest = Scorer(getattr(importlib.import_module(module), attr), "x").digest
    scorer = _register(http, kind="code", reference=reference, digest=digest)
    _refused(_monitor_pass(http, scorer), "scorer_modules", f"{module!r}")
    assert http.get(f"{API}/evaluation/scorers").status_code == 200  # the server is alive


def test_only_scorer_objects_of_the_allowed_modules_run(http: httpx.Client) -> None:
    # A plain function or an imported name of an allowed module is not a scorer.
    for reference in ("eval_scorers:Any", "eval_scorers:lw.scorer", "eval_scorers:lw"):
        scorer = _register(http, kind="code", reference=reference, digest="0" * 64)
        _refused(_monitor_pass(http, scorer), "@lw.scorer")
    digest = eval_scorers.word_count.digest
    good = _register(http, kind="code", reference="eval_scorers:word_count", digest=digest)
    answer = _monitor_pass(http, good)
    assert answer.status_code == 200, answer.text
    assert "scorer_modules" not in answer.text and "@lw.scorer" not in answer.text


def test_a_server_without_scorer_modules_runs_no_code_scorer(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from loopwright.server.app import create_app

    root = tmp_path_factory.mktemp("hosted-none")
    settings = resolve_settings(home=root / "home", db_uri=f"sqlite:///{root / 'db'}", user="ada")
    with (
        serve_in_thread(create_app(settings, auth=False)) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        good = _register(
            http,
            kind="code",
            reference="eval_scorers:word_count",
            digest=eval_scorers.word_count.digest,
        )
        _refused(_monitor_pass(http, good), "runs no code scorers", "scorer_modules")


def test_scorer_modules_setting_is_checked() -> None:
    with pytest.raises(ConfigError, match="scorer_modules"):
        resolve_settings(scorer_modules="os;rm -rf")
    assert resolve_settings(scorer_modules=" a.b , c ").scorer_modules == ("a.b", "c")


def _judge(endpoint: str, **extra: Any) -> dict[str, Any]:
    config = {"rubric": "Rate {outputs}", "model": "m", "endpoint": endpoint, **extra}
    return {"kind": "judge", "reference": "judge:m", "digest": "d" * 64, "config": config}


def test_a_judge_never_sends_the_servers_environment(
    http: httpx.Client, judge_stub: JudgeStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_CANARY, "server-secret")
    before = len(judge_stub.prompts)
    scorer = _register(http, **_judge(judge_stub.base, api_key_env=_CANARY))
    _refused(_monitor_pass(http, scorer), "api_key_env")
    assert len(judge_stub.prompts) == before  # the endpoint was never called


def test_a_server_runs_approved_judges_only(http: httpx.Client, judge_stub: JudgeStub) -> None:
    before = len(judge_stub.prompts)
    scorer = _register(http, **_judge(judge_stub.base))
    _refused(_monitor_pass(http, scorer), "not approved")
    assert len(judge_stub.prompts) == before


def test_judge_and_builtin_digests_are_computed_by_the_server(
    http: httpx.Client, judge_stub: JudgeStub
) -> None:
    from loopwright.evaluation.judges import Judge

    body = _judge(judge_stub.base)
    name = _register(http, **body).partition("/")[0]
    stored = http.get(f"{API}/evaluation/scorers/{name}").json()
    expected = Judge.from_config(name, body["config"]).digest
    assert stored["digest"] == expected != "d" * 64
    builtin = {"kind": "builtin", "reference": "builtin:json_valid", "digest": "f" * 64}
    answer = http.post(f"{API}/evaluation/scorers", json={"name": "jv", **builtin})
    assert answer.status_code == 201 and answer.json()["digest"] != "f" * 64, answer.text
    for bad in (
        _judge("file:///etc/passwd"),
        _judge(judge_stub.base, scale="high"),
        {**builtin, "reference": "os:abort"},
        {**builtin, "reference": "builtin:nope"},
    ):
        answer = http.post(f"{API}/evaluation/scorers", json={"name": "bad", **bad})
        assert answer.status_code == 400, answer.text
