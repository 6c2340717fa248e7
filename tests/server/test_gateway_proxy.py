"""The LLM gateway end to end: a real server and a stub OpenAI-compatible upstream on 127.0.0.1,
driven by the official ``openai`` client and by raw HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionUserMessageParam

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
from _llm_stub import Stub, answer_of, run_stub, words

from loopwright.config import Settings, resolve_settings

SECRET = "sk-upstream-SECRET-0123456789abcdefXYZ"


@dataclass
class World:
    url: str
    stub: Stub
    settings: Settings
    http: httpx.Client
    clients: dict[str, openai.OpenAI] = field(default_factory=dict)

    def route(self, name: str, **config: Any) -> None:
        """Create (or replace) a gateway route through the REST API."""
        config.setdefault("backoff_s", 0.001)
        found = self.http.get(f"/api/v1/gateway/routes/{name}")
        if found.status_code == 200:
            answer = self.http.put(f"/api/v1/gateway/routes/{name}", json={"config": config})
        else:
            answer = self.http.post("/api/v1/gateway/routes", json={"name": name, "config": config})
        assert answer.status_code in (200, 201), answer.text

    def target(self, name: str, upstream: str = "default", **extra: Any) -> dict[str, Any]:
        return {"name": name, "base_url": self.stub.base(upstream), "model": f"m-{name}", **extra}

    def client(self, user: str = "ada") -> openai.OpenAI:
        """The official client acting as ``user`` (one per user, closed with the module)."""
        if user not in self.clients:
            self.clients[user] = openai.OpenAI(
                base_url=self.url + "/v1", api_key="unused", max_retries=0,
                default_headers={"X-Loopwright-User": user},
            )  # fmt: skip
        return self.clients[user]

    def usage(self, **params: Any) -> list[dict[str, Any]]:
        answer = self.http.get("/api/v1/gateway/usage", params=params)
        assert answer.status_code == 200, answer.text
        rows: list[dict[str, Any]] = answer.json()
        return rows


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    serve_app: Callable[..., AbstractContextManager[str]],
    pg_database: Callable[[], AbstractContextManager[str]],
) -> Iterator[World]:
    home = tmp_path_factory.mktemp("gateway") / "home"
    with ExitStack() as stack:
        stub = stack.enter_context(run_stub())
        db_uri = stack.enter_context(pg_database()) if request.param == "postgres" else None
        settings = resolve_settings(home=home, db_uri=db_uri, user="server-admin")
        url = stack.enter_context(serve_app(settings, auth=False))
        world = World(url, stub, settings, stack.enter_context(httpx.Client(base_url=url)))
        stack.callback(_close_all, world.clients.values())
        answer = world.http.put("/api/v1/gateway/secrets/upstream-key", json={"value": SECRET})
        assert answer.status_code == 200, answer.text
        yield world


@pytest.fixture
def gw(world: World) -> World:
    world.stub.reset()
    return world


def _close_all(clients: Iterable[openai.OpenAI]) -> None:
    for client in clients:
        client.close()


def _chat(text: str = "hello there") -> list[ChatCompletionMessageParam]:
    return [ChatCompletionUserMessageParam(role="user", content=text)]


def test_a_chat_completion_passes_through_with_usage_cost_and_a_trace(gw: World) -> None:
    gw.route(
        "chat-basic",
        targets=[gw.target("primary", "a", secret="upstream-key",
                           price={"input_per_1m": 1.0, "output_per_1m": 2.0})],
    )  # fmt: skip
    reply = gw.client("cost-user").chat.completions.with_raw_response.create(
        model="chat-basic", messages=_chat("what is two plus two")
    )
    answer = reply.parse()
    assert answer.choices[0].message.content == answer_of("what is two plus two")
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (5, 7)
    # The upstream got the target's model and the secret as a bearer; the caller never sees it.
    assert gw.stub.bodies["a"][0]["model"] == "m-primary"
    assert gw.stub.headers["a"][0]["authorization"] == f"Bearer {SECRET}"
    trace_id = reply.headers["x-loopwright-trace-id"]
    assert reply.headers["x-loopwright-target"] == "primary"
    rows = gw.usage(route="chat-basic", user="cost-user")
    assert [(r["requests"], r["prompt_tokens"], r["completion_tokens"]) for r in rows] == [
        (1, 5, 7)
    ]
    assert rows[0]["cost_usd"] == pytest.approx((5 * 1.0 + 7 * 2.0) / 1e6)
    trace = _trace(gw, trace_id)
    llm = next(s for s in trace["spans"] if s["kind"] == "LLM")
    assert llm["attributes"]["gen_ai.usage.input_tokens"] == 5
    assert llm["attributes"]["gen_ai.request.model"] == "m-primary"
    assert llm["attributes"]["lw.gateway.route"] == "chat-basic"


def _trace(gw: World, trace_id: str) -> dict[str, Any]:
    from loopwright.store.home import open_store
    from loopwright.tracing.service import TracingService

    deadline = time.monotonic() + 10
    with open_store(gw.settings) as store:
        tracing = TracingService(store)
        while True:
            try:
                trace = tracing.get(trace_id)
                break
            except LookupError:
                assert time.monotonic() < deadline, f"trace {trace_id} was not stored in 10 s"
                time.sleep(0.05)
    assert trace.links.gateway_route is not None
    return {
        "links": trace.links,
        "spans": [{"kind": s.kind, "name": s.name, "attributes": dict(s.attributes),
                   "status": s.status} for s in trace.spans],
    }  # fmt: skip


def test_streamed_usage_equals_the_upstreams_reported_usage(gw: World) -> None:
    gw.route("chat-stream", targets=[gw.target("primary", "s")])
    stream = gw.client("streamer").chat.completions.create(
        model="chat-stream", messages=_chat("count these five words please"), stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    text, usage = [], None
    for chunk in stream:
        if chunk.choices:
            text.append(chunk.choices[0].delta.content or "")
        if chunk.usage is not None:
            usage = chunk.usage
    expected = answer_of("count these five words please")
    assert "".join(text) == expected
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (
        5, words(expected)
    )  # fmt: skip
    rows = gw.usage(route="chat-stream")
    assert [
        (r["prompt_tokens"], r["completion_tokens"], r["estimated_requests"]) for r in rows
    ] == [(usage.prompt_tokens, usage.completion_tokens, 0)]


def test_a_caller_who_did_not_ask_for_usage_gets_no_usage_chunk_but_it_is_counted(
    gw: World,
) -> None:
    gw.route("chat-stream-quiet", targets=[gw.target("primary", "q")])
    chunks = list(
        gw.client().chat.completions.create(
            model="chat-stream-quiet", messages=_chat("a b c"), stream=True
        )
    )
    assert all(chunk.usage is None and chunk.choices for chunk in chunks)
    assert gw.stub.bodies["q"][0]["stream_options"] == {"include_usage": True}
    rows = gw.usage(route="chat-stream-quiet")
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (3, 5)


def test_a_stream_without_usage_is_counted_from_what_streamed_and_marked_estimated(
    gw: World,
) -> None:
    gw.route("chat-no-usage", targets=[gw.target("primary", "nu")])
    gw.stub.no_usage.add("nu")
    chunks = list(
        gw.client().chat.completions.create(
            model="chat-no-usage", messages=_chat("one two three"), stream=True,
            stream_options={"include_usage": True},
        )
    )  # fmt: skip
    assert all(chunk.usage is None for chunk in chunks)
    rows = gw.usage(route="chat-no-usage")
    assert rows[0]["estimated_requests"] == 1
    assert rows[0]["completion_tokens"] == words(answer_of("one two three"))  # chunks streamed
    assert rows[0]["prompt_tokens"] > 0


def test_completions_embeddings_and_models(gw: World) -> None:
    gw.route("text", targets=[gw.target("primary", "t")])
    gw.route("embed", targets=[gw.target("primary", "e")], min_role="viewer")
    client = gw.client()
    done = client.completions.create(model="text", prompt="say hi")
    assert done.choices[0].text == answer_of("say hi")
    vectors = client.embeddings.create(model="embed", input=["a b", "c"])
    assert [len(v.embedding) for v in vectors.data] == [3, 3]
    assert vectors.usage.prompt_tokens == 3
    assert {"text", "embed"} <= {m.id for m in client.models.list()}
    streamed = "".join(
        c.choices[0].text for c in client.completions.create(model="text", prompt="x y",
                                                             stream=True) if c.choices
    )  # fmt: skip
    assert streamed == answer_of("x y")


def test_fallback_on_500_and_retry_on_429(gw: World) -> None:
    gw.route(
        "chat-fallback", targets=[gw.target("primary", "down")],
        fallbacks=[gw.target("backup", "up")], retries=1,
    )  # fmt: skip
    gw.stub.always["down"] = 500
    reply = gw.client().chat.completions.with_raw_response.create(
        model="chat-fallback", messages=_chat()
    )
    assert reply.headers["x-loopwright-target"] == "backup"
    assert (gw.stub.calls["down"], gw.stub.calls["up"]) == (2, 1)  # one retry, then fallback

    gw.route("chat-retry", targets=[gw.target("primary", "busy")], retries=2)
    gw.stub.script["busy"].extend([429, 429])
    answer = gw.client().chat.completions.create(model="chat-retry", messages=_chat())
    assert answer.choices[0].message.content == answer_of("hello there")
    assert gw.stub.calls["busy"] == 3


def test_upstream_failures_name_what_was_tried(gw: World) -> None:
    gw.route("chat-all-down", targets=[gw.target("primary", "x")], retries=1)
    gw.stub.always["x"] = 503
    with pytest.raises(openai.APIStatusError) as failed:
        gw.client().chat.completions.create(model="chat-all-down", messages=_chat())
    assert failed.value.status_code == 502
    assert "tried primary (2 attempts)" in failed.value.message

    closed = {"name": "primary", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    gw.route("chat-unreachable", targets=[closed], retries=0)
    with pytest.raises(openai.APIStatusError) as failed:
        gw.client().chat.completions.create(model="chat-unreachable", messages=_chat())
    assert failed.value.status_code == 502 and "unreachable" in failed.value.message

    gw.stub.hang_s = 1.0
    gw.route(
        "chat-slow", targets=[gw.target("primary", "slow", timeout_s=0.1)],
        fallbacks=[gw.target("backup", "fast")], retries=0,
    )  # fmt: skip
    gw.stub.script["slow"].append(0)
    reply = gw.client().chat.completions.with_raw_response.create(
        model="chat-slow", messages=_chat()
    )
    assert reply.headers["x-loopwright-target"] == "backup"

    gw.stub.always["y"] = 400  # the caller's mistake: passed on, neither retried nor failed over
    gw.route("chat-bad", targets=[gw.target("primary", "y")], fallbacks=[gw.target("b", "z")])
    with pytest.raises(openai.BadRequestError):
        gw.client().chat.completions.create(model="chat-bad", messages=_chat())
    assert (gw.stub.calls["y"], gw.stub.calls["z"]) == (1, 0)


def test_malformed_requests_and_unknown_routes(gw: World) -> None:
    gw.route("chat-strict", targets=[gw.target("primary")])
    post = gw.http.post
    cases = [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (json.dumps({"messages": []}).encode(), 400, "'model'"),
        (json.dumps({"model": 3}).encode(), 400, "'model'"),
        (json.dumps({"model": "chat-strict", "stream": "yes"}).encode(), 400, "'stream'"),
        (json.dumps({"model": "nope", "messages": []}).encode(), 404, "routes:"),
    ]
    for body, status, fragment in cases:
        answer = post("/v1/chat/completions", content=body,
                      headers={"content-type": "application/json"})  # fmt: skip
        assert answer.status_code == status, (body, answer.text)
        assert fragment in answer.json()["error"]["message"]
    embeds = post("/v1/embeddings", json={"model": "chat-strict", "input": "x", "stream": True})
    assert embeds.status_code == 400


def test_canary_split_follows_the_weights_and_sticky_callers_stay(gw: World) -> None:
    gw.route(
        "chat-ab", targets=[gw.target("a", "ab-a", weight=3), gw.target("b", "ab-b", weight=1)],
        sticky_header="X-User-Id",
    )  # fmt: skip
    seen: dict[str, str] = {}
    for i in range(40):
        answer = gw.http.post(
            "/v1/chat/completions", json={"model": "chat-ab", "messages": _chat()},
            headers={"X-User-Id": f"user-{i}"},
        )  # fmt: skip
        seen[f"user-{i}"] = answer.headers["x-loopwright-target"]
    # The same callers land on the same targets again: the split is a hash, not a coin.
    for i in range(0, 40, 7):
        again = gw.http.post(
            "/v1/chat/completions", json={"model": "chat-ab", "messages": _chat()},
            headers={"X-User-Id": f"user-{i}"},
        )  # fmt: skip
        assert again.headers["x-loopwright-target"] == seen[f"user-{i}"]
    share = sum(t == "a" for t in seen.values()) / len(seen)
    assert 0.5 < share < 0.95  # 3:1 over 40 sticky callers

    canary = [gw.target("primary", "p"), gw.target("canary", "c", weight=0.2)]
    gw.route("chat-canary", targets=canary)
    for _ in range(50):
        gw.http.post("/v1/chat/completions", json={"model": "chat-canary", "messages": _chat()})
    assert 2 <= gw.stub.calls["c"] <= 22 and gw.stub.calls["p"] + gw.stub.calls["c"] == 50


def test_rate_limits_and_budgets_refuse_with_retry_after(gw: World) -> None:
    gw.route("chat-limited", targets=[gw.target("primary")],
             limits={"requests_per_minute": 2})  # fmt: skip
    client = gw.client("limited-user")
    for _ in range(2):
        client.chat.completions.create(model="chat-limited", messages=_chat())
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="chat-limited", messages=_chat())
    assert int(refused.value.response.headers["retry-after"]) >= 1
    assert "2 requests per minute" in refused.value.message
    (row,) = gw.usage(route="chat-limited", user="limited-user", group_by="route,user")
    assert (row["requests"], row["errors"], row["prompt_tokens"]) == (3, 1, 4)  # 429 counted
    # Limits are per user.
    gw.client("other-user").chat.completions.create(model="chat-limited", messages=_chat())

    gw.route("chat-budget", targets=[gw.target("primary")], limits={"tokens_per_day": 10})
    budget = gw.client("budget-user")
    budget.chat.completions.create(model="chat-budget", messages=_chat("one two three four"))
    with pytest.raises(openai.RateLimitError) as spent:  # 4 + 6 tokens: the day's 10 are used
        budget.chat.completions.create(model="chat-budget", messages=_chat())
    assert "tokens per day" in spent.value.message


def test_guardrails_block_and_annotate_json_answers(gw: World) -> None:
    gw.route(
        "chat-guarded", targets=[gw.target("primary")],
        guardrails=[
            {"check": "denylist", "stage": "pre", "params": {"words": ["forbidden"]}},
            {"check": "pii", "stage": "post", "mode": "block", "params": {"kinds": ["email"]}},
            {"check": "length", "stage": "post", "mode": "annotate", "params": {"max_chars": 20}},
        ],
    )  # fmt: skip
    client = gw.client()
    with pytest.raises(openai.BadRequestError) as pre:
        client.chat.completions.create(model="chat-guarded", messages=_chat("a Forbidden word"))
    assert "denylist" in pre.value.message and gw.stub.calls["default"] == 0
    with pytest.raises(openai.UnprocessableEntityError) as post:
        client.chat.completions.create(model="chat-guarded", messages=_chat("mail ada@example.com"))
    assert "found email" in post.value.message and "ada@example.com" not in post.value.message
    reply = client.chat.completions.with_raw_response.create(
        model="chat-guarded", messages=_chat("a perfectly harmless but long question")
    )
    assert "length" in reply.headers["x-loopwright-guardrails"]
    trace = _trace(gw, reply.headers["x-loopwright-trace-id"])
    actions = {s["name"]: s["attributes"]["lw.guardrail.action"]
               for s in trace["spans"] if s["kind"] == "GUARDRAIL"}  # fmt: skip
    assert actions == {"guardrail denylist": "pass", "guardrail pii": "pass",
                       "guardrail length": "annotate"}  # fmt: skip


def test_guardrails_stop_a_stream_with_an_error_event(gw: World) -> None:
    schema = {"type": "object", "required": ["answer"]}
    gw.route(
        "chat-guarded-stream", targets=[gw.target("primary", "gs")],
        guardrails=[
            {"check": "regex", "params": {"patterns": [r"\bsecret\b"]}},
            {"check": "json_schema", "mode": "block", "params": {"schema": schema}},
        ],
    )  # fmt: skip
    body = {"model": "chat-guarded-stream", "stream": True,
            "messages": _chat("tell the secret now")}  # fmt: skip
    with gw.http.stream("POST", "/v1/chat/completions", json=body) as answer:
        events = [line for line in answer.iter_lines() if line.startswith("data:")]
    texts = [json.loads(e[5:]) for e in events if e != "data: [DONE]"]
    assert texts[-1]["error"]["type"] == "guardrail_blocked"
    sent = "".join(c["choices"][0]["delta"].get("content", "") for c in texts[:-1])
    assert "secret" not in sent and sent  # stopped before the chunk that matched
    assert events[-1] == "data: [DONE]" and gw.stub.calls["gs"] == 1
    # The answer is no JSON: the schema check blocks at the end, after the text streamed.
    gw.stub.replies["gs"] = '{"wrong": 1}'
    body["messages"] = _chat("fine")
    with gw.http.stream("POST", "/v1/chat/completions", json=body) as answer:
        events = [line for line in answer.iter_lines() if line.startswith("data:")]
    assert "does not match the schema" in events[-2] and events[-1] == "data: [DONE]"
    rows = gw.usage(route="chat-guarded-stream")
    assert rows[0]["errors"] == 2 and rows[0]["requests"] == 2


def test_the_secret_never_appears_in_answers_or_logs(
    gw: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gw.route("chat-secret", targets=[gw.target("primary", "sec", secret="upstream-key")])
    texts = [
        gw.http.get("/api/v1/gateway/secrets").text,
        gw.http.put("/api/v1/gateway/secrets/upstream-key", json={"value": SECRET}).text,
        gw.http.get("/api/v1/gateway/routes/chat-secret").text,
        gw.http.get("/api/v1/gateway/routes").text,
        gw.http.post(
            "/v1/chat/completions", json={"model": "chat-secret", "messages": _chat()}
        ).text,
        gw.http.get("/v1/models").text,
    ]
    gw.stub.always["sec"] = 500
    texts.append(
        gw.http.post(
            "/v1/chat/completions", json={"model": "chat-secret", "messages": _chat()}
        ).text
    )
    assert all(SECRET not in text and SECRET[-12:] not in text for text in texts)
    assert SECRET not in caplog.text
    assert "****" in texts[0]
    from loopwright.store.home import open_store

    with open_store(gw.settings) as store, store.db.read() as conn:
        import sqlalchemy as sa

        dumped = " ".join(
            str(row) for table in ("gateway_secrets", "gateway_routes", "audit_events")
            for row in conn.execute(sa.text(f"SELECT * FROM {table}")).all()
        )  # fmt: skip
    assert SECRET not in dumped


def test_annotations_ride_a_stream_as_comments_before_done(gw: World) -> None:
    check = {"check": "length", "mode": "annotate", "params": {"max_chars": 5}}
    gw.route("chat-annotated-stream", targets=[gw.target("primary", "an")], guardrails=[check])
    body = {"model": "chat-annotated-stream", "stream": True, "messages": _chat("long enough")}
    with gw.http.stream("POST", "/v1/chat/completions", json=body) as answer:
        lines = [line for line in answer.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert any(line.startswith(": guardrail length annotate") for line in lines)


def test_a_caller_leaving_mid_stream_is_counted_as_such(gw: World) -> None:
    gw.route("chat-left", targets=[gw.target("primary", "left")])
    gw.stub.pace_s = 0.05
    body = {"model": "chat-left", "stream": True, "messages": _chat(" ".join(["w"] * 40))}
    with httpx.Client(base_url=gw.url) as own, own.stream(
        "POST", "/v1/chat/completions", json=body
    ) as answer:  # fmt: skip
        next(answer.iter_lines())
    deadline = time.monotonic() + 5
    while True:
        rows = gw.usage(route="chat-left")
        if rows and rows[0]["errors"] == 1:
            break
        assert time.monotonic() < deadline, f"no usage row for the abandoned stream: {rows}"
        time.sleep(0.1)
    assert rows[0]["requests"] == 1 and rows[0]["completion_tokens"] < 42


def test_concurrent_requests_are_each_counted_once(gw: World) -> None:
    from concurrent.futures import ThreadPoolExecutor

    gw.route("chat-busy", targets=[gw.target("primary", "busy-a"),
                                   gw.target("canary", "busy-b", weight=0.5)])  # fmt: skip

    def one(i: int) -> int:
        body = {"model": "chat-busy", "messages": _chat(f"n {i}"), "stream": i % 2 == 0}
        with httpx.Client(base_url=gw.url, timeout=30) as own:
            return own.post("/v1/chat/completions", json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(one, range(40))) == {200}
    (row,) = gw.usage(route="chat-busy", group_by="route")
    assert (row["requests"], row["errors"], row["estimated_requests"]) == (40, 0, 0)
    assert row["prompt_tokens"] == 80 and gw.stub.calls["busy-a"] + gw.stub.calls["busy-b"] == 40
