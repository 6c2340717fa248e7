"""Hostile gateway requests keep the server answering: slow guardrail text, prompt templates
that would loop or grow without end, oversized upstream answers, deeply nested JSON. Each is
refused with a message naming the limit while ``/health`` keeps answering at once."""

from __future__ import annotations

import gzip
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
from _llm_stub import Stub, run_stub

from loopwright.config import resolve_settings

MAX_REQUEST = 400_000


class World:
    def __init__(self, url: str, stub: Stub, http: httpx.Client) -> None:
        self.url, self.stub, self.http = url, stub, http

    def route(self, name: str, **config: Any) -> None:
        config.setdefault("backoff_s", 0.001)
        answer = self.http.post("/api/v1/gateway/routes", json={"name": name, "config": config})
        assert answer.status_code == 201, answer.text

    def target(self, name: str, upstream: str = "default", **extra: Any) -> dict[str, Any]:
        return {"name": name, "base_url": self.stub.base(upstream), "model": f"m-{name}", **extra}

    def chat(self, route: str, text: str = "hello", **extra: Any) -> httpx.Response:
        body = {"model": route, "messages": [{"role": "user", "content": text}], **extra}
        return self.http.post("/v1/chat/completions", json=body, timeout=120)

    def while_serving(self, request: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
        """``request``'s answer, and the slowest ``/health`` asked while it ran."""
        answers: list[httpx.Response] = []
        thread = threading.Thread(target=lambda: answers.append(request()))
        thread.start()
        slowest = 0.0
        with httpx.Client(base_url=self.url) as health:
            while thread.is_alive():
                started = time.perf_counter()
                assert health.get("/health", timeout=60).status_code == 200
                slowest = max(slowest, time.perf_counter() - started)
                time.sleep(0.02)
        thread.join()
        return answers[0], slowest


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    serve_app: Callable[..., AbstractContextManager[str]],
) -> Iterator[World]:
    home = tmp_path_factory.mktemp("gateway-hostile") / "home"
    with ExitStack() as stack:
        stub = stack.enter_context(run_stub())
        settings = resolve_settings(home=home, user="server-admin", max_request_bytes=MAX_REQUEST)
        url = stack.enter_context(serve_app(settings, auth=False))
        yield World(url, stub, stack.enter_context(httpx.Client(base_url=url)))


@pytest.fixture
def gw(world: World) -> World:
    world.stub.reset()
    return world


def test_a_pii_guardrail_on_long_text_without_an_at_sign_answers_quickly(gw: World) -> None:
    # 'a' * 300 KB without '@' took minutes with an unanchored email pattern, on the loop.
    pii = [{"check": "pii", "stage": "pre", "mode": "block"}]
    gw.route("pii-long", targets=[gw.target("primary")], guardrails=pii)
    started = time.perf_counter()
    answer, slowest = gw.while_serving(lambda: gw.chat("pii-long", "a" * 300_000))
    assert answer.status_code == 200, answer.text
    assert time.perf_counter() - started < 5
    assert slowest < 0.2
    blocked = gw.chat("pii-long", "a" * 200_000 + " write to ada@example.com")
    assert blocked.status_code == 400
    assert "found email" in blocked.json()["error"]["message"]


def test_a_streamed_answer_is_checked_across_chunks(gw: World) -> None:
    pii = [{"check": "pii", "stage": "post", "mode": "block", "params": {"kinds": ["email"]}}]
    gw.route("pii-stream", targets=[gw.target("primary")], guardrails=pii)
    gw.stub.replies["default"] = "word " * 5000 + "mail ada@example.com please"
    answer = gw.chat("pii-stream", stream=True)
    assert answer.status_code == 200
    assert "guardrail 'pii' blocked the answer: found email" in answer.text
    assert "ada@example.com" not in answer.text


def test_a_nested_unbounded_regex_guardrail_is_refused(gw: World) -> None:
    config = {"targets": [gw.target("primary")],
              "guardrails": [{"check": "regex", "params": {"patterns": ["(a+)+$"]}}]}  # fmt: skip
    answer = gw.http.post("/api/v1/gateway/routes", json={"name": "redos", "config": config})
    assert answer.status_code == 400
    assert "nests a repeat inside an unbounded repeat" in answer.text


def _prompt(gw: World, name: str, template: str) -> httpx.Response:
    gw.http.post("/api/v1/prompts", json={"name": name})
    return gw.http.post(f"/api/v1/prompts/{name}/versions", json={"template": template})


def test_a_template_that_loops_too_long_is_refused_while_health_answers(gw: World) -> None:
    loops = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}hi"
    created = _prompt(gw, "loops", loops + " {{ name }}")
    assert created.status_code == 201, created.text
    gw.route("loops", targets=[gw.target("primary", prompt="prompts:/loops/1")])
    answer, slowest = gw.while_serving(lambda: gw.chat("loops", prompt_variables={"name": "x"}))
    assert answer.status_code == 400
    assert "loops more than" in answer.json()["error"]["message"]
    assert slowest < 0.2


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ('{% if 1 %}{{ "x" * 100000000 }}{% endif %} {{ name }}', "product would be over"),
        ("{% if 1 %}{{ 10 ** 100000000 }}{% endif %} {{ name }}", "power would be over"),
        ("{% for i in range(100000000) %}{% endfor %}{{ name }}", "the cap is 10000"),
    ],
)
def test_a_template_out_of_bounds_on_its_face_is_refused_at_register(
    gw: World, template: str, message: str
) -> None:
    answer = _prompt(gw, "face", template)
    assert answer.status_code == 400
    assert message in answer.text


def test_a_template_that_grows_past_the_cap_at_render_is_refused(gw: World) -> None:
    grows = "{% set ns = namespace(s=name) %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
    created = _prompt(gw, "grows", grows + "{% endfor %}{{ ns.s }}")
    assert created.status_code == 201, created.text
    gw.route("grows", targets=[gw.target("primary", prompt="prompts:/grows/1")])
    answer = gw.chat("grows", prompt_variables={"name": "xy"})
    assert answer.status_code == 400
    assert "concatenation would be over" in answer.json()["error"]["message"]


def test_an_upstream_answer_over_the_cap_is_a_502(gw: World) -> None:
    gw.route("big", targets=[gw.target("primary")])
    gw.stub.replies["default"] = "x" * (MAX_REQUEST + 1000)
    answer = gw.chat("big")
    assert answer.status_code == 502
    assert f"over {MAX_REQUEST} bytes" in answer.json()["error"]["message"]


def test_deeply_nested_json_is_a_400(gw: World) -> None:
    gw.route("nested", targets=[gw.target("primary")])
    body = '{"model": "nested", "messages": ' + "[" * 100_000 + "]" * 100_000 + "}"
    answer = gw.http.post(
        "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400
    assert "nests too deeply" in answer.json()["error"]["message"]


def test_deeply_nested_otlp_json_is_a_400(world: World) -> None:
    value = '{"kvlistValue": {"values": [{"key": "k", "value": ' * 5000 + "{}" + "}]}}" * 5000
    span = '{"traceId": "' + "1" * 32 + '", "spanId": "' + "2" * 16 + '", "name": "s", '
    span += '"attributes": [{"key": "a", "value": ' + value + "}]}"
    body = '{"resourceSpans": [{"scopeSpans": [{"spans": [' + span + "]}]}]}"
    answer = world.http.post(
        "/v1/traces", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400, answer.text[:300]
    assert "nests values too deeply" in answer.text or "not an OTLP/JSON" in answer.text


def test_otlp_gzip_decodes_every_member_and_refuses_a_truncated_one(world: World) -> None:
    def span(n: int) -> dict[str, object]:
        return {"traceId": f"{n:032x}", "spanId": f"{n:016x}", "name": f"member-{n}",
                "startTimeUnixNano": "1", "endTimeUnixNano": "2"}  # fmt: skip

    def request(n: int) -> bytes:
        spans = [{"scopeSpans": [{"spans": [span(n)]}]}]
        return json.dumps({"resourceSpans": spans}).encode()

    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    whole = gzip.compress(request(7))
    # A second member is part of the body: blank space keeps the JSON valid, text after it
    # does not (a decoder of the first member only would take both).
    answer = world.http.post("/v1/traces", content=whole + gzip.compress(b" "), headers=headers)
    assert answer.status_code == 200, answer.text
    answer = world.http.post("/v1/traces", content=whole + gzip.compress(b"junk"), headers=headers)
    assert answer.status_code == 400, answer.text
    answer = world.http.post("/v1/traces", content=whole[:-4], headers=headers)
    assert answer.status_code == 400
    assert "truncated" in answer.text
    huge = gzip.compress(b" " * (MAX_REQUEST + 1)) + whole
    answer = world.http.post("/v1/traces", content=huge, headers=headers)
    assert answer.status_code == 413
