"""The dashboard's LLMOps pages (prompts, prompt approvals, traces, gateway, evaluations) over a
live server with auth, on SQLite and PostgreSQL: every page loads for a viewer, hostile prompt
text and trace inputs are shown as text, a viewer cannot approve (403 page), an approver can in
Chromium, bad query values are 400 pages, pages are bounded, no secret is shown.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from _browsing import settle
from _browsing import signed_in as _session

from loopwright.config import Settings, resolve_settings

HOSTILE = "<script>window.pwned = 1; alert('pwned')</script>"
ROUTE = "chat/support"  # a route name with a slash: its pages take the rest of the path
SECRET_VALUE = "sk-ui-test-9f8e7d6c5b4a"
ROWS = 60  # evaluation rows: more than one page of 50


@dataclass(frozen=True)
class Seeded:
    trace_id: str
    error_trace_id: str
    pending_request: str  # eve: support@production -> v2 (abe approves it in Chromium)
    reject_request: str  # eve: support@canary -> v1 (vic is refused; abe rejects over HTTP)
    eval_run: str


def _trace_spans(trace_id: str, base: int, *, fail: bool) -> list[Any]:
    from loopwright.tracing.entities import Span

    root, llm, tool = "a" * 15 + "1", "b" * 15 + "2", "c" * 15 + "3"
    ms = 1_000_000
    return [
        Span(trace_id, root, None, "answer", "CHAIN", base, base + 120 * ms,
             status="ERROR" if fail else "OK",
             attributes={"lw.inputs": {"question": HOSTILE}, "lw.outputs": "done"}),
        Span(trace_id, llm, root, "chat " + HOSTILE, "LLM", base + 10 * ms, base + 90 * ms,
             status="ERROR" if fail else "OK",
             status_message="upstream said no" if fail else "",
             attributes={"lw.inputs": {"messages": [{"role": "user", "content": HOSTILE}]},
                         "lw.outputs": "x" * 9000, "gen_ai.usage.input_tokens": 12,
                         "gen_ai.usage.output_tokens": 30, "lw.cost_usd": 0.0012,
                         "gen_ai.request.model": "small"}),
        Span(trace_id, tool, llm, "lookup", "TOOL", base + 20 * ms, base + 40 * ms),
    ]  # fmt: skip


def _seed(settings: Settings) -> Seeded:
    import time

    from loopwright._ids import new_id
    from loopwright.client import Client
    from loopwright.evaluation.judges import Judge
    from loopwright.prompts.service import PromptService
    from loopwright.registry.entities import ApprovalPolicy, ApprovalRule
    from loopwright.store import schema as t
    from loopwright.tracing.entities import TraceLinks

    def as_user(name: str) -> Settings:
        return resolve_settings(home=settings.home, db_uri=settings.db_uri, user=name)

    with Client(as_user("eve")) as eve:
        eve.prompts.register("support", f"Answer {{{{ question }}}} politely. {HOSTILE}")
        eve.prompts.register(
            "support",
            [{"role": "system", "content": "You help. " + HOSTILE},
             {"role": "user", "content": "{{ question }}"}],
            commit_message="chat form",
            model_config={"temperature": 0.2},
        )  # fmt: skip
        for i in range(3):
            eve.prompts.register(f"other-{i}", "Hi {{ name }}")
        rules = (ApprovalRule("alias:production"), ApprovalRule("alias:canary"))
        PromptService(eve.store, actor="ada").set_policy("support", ApprovalPolicy(rules))
        eve.prompts.set_alias("support", "staging", 1)  # unprotected: moves at once
        pending = eve.prompts.set_alias("support", "production", 2).request
        rejected = eve.prompts.set_alias("support", "canary", 1).request
        assert pending is not None and rejected is not None

        experiment = eve.tracking.create_experiment("llm-app").id
        now_ns = time.time_ns()
        trace_id, error_id = "d" * 31 + "1", "e" * 31 + "2"
        links = TraceLinks(prompt_versions=("support/2",), gateway_route=ROUTE)
        eve.tracing.record(_trace_spans(trace_id, now_ns, fail=False),
                           experiment_id=experiment, links=links)  # fmt: skip
        eve.tracing.record(_trace_spans(error_id, now_ns + 1000, fail=True))
        eve.tracing.log_assessment(
            trace_id, "helpful", True, source_type="HUMAN", source_id="vic", rationale=HOSTILE
        )

        with Client(as_user("ada")) as ada:
            ada.gateway.set_secret("upstream-key", SECRET_VALUE)
            ada.gateway.create_route(
                ROUTE,
                {
                    "targets": [
                        {"name": "primary", "base_url": "http://127.0.0.1:9/v1",
                         "model": "small", "secret": "upstream-key"},
                        {"name": "canary", "base_url": "http://127.0.0.1:9/v1",
                         "model": "large", "weight": 0.1},
                    ],
                    "fallbacks": [{"name": "backup", "base_url": "http://127.0.0.1:9/v1",
                                   "model": "tiny"}],
                    "guardrails": [{"check": "regex", "stage": "pre", "mode": "block",
                                    "params": {"patterns": ["secret"]}}],
                },
            )  # fmt: skip
        now = int(time.time() * 1000)
        usage = [
            {"id": new_id(), "route": ROUTE, "target": target, "user_name": user,
             "endpoint": "chat", "status": status, "prompt_tokens": 10, "completion_tokens": 20,
             "estimated": False, "cost_usd": 0.001, "latency_ms": 5.0, "stream": False,
             "trace_id": None, "created_at": now - minutes * 60_000}
            for minutes, target, user, status in (
                (1, "primary", "eve", 200), (3, "canary", "eve", 200), (30, "primary", "vic", 200),
                (120, "primary", "eve", 500), (3000, "primary", "eve", 200),
            )
        ]  # fmt: skip
        with eve.store.db.write() as conn:
            conn.execute(t.gateway_usage.insert(), usage)

        eve.evaluation.create_dataset("qa-eval")
        records = [
            {"inputs": {"question": f"q{i} {HOSTILE}"}, "outputs": f"answer {i}",
             "expectations": {"answer": f"answer {i}"}}
            for i in range(ROWS)
        ]  # fmt: skip
        eve.evaluation.upsert_records("qa-eval", records)

        import loopwright as lw

        @lw.scorer
        def exact(*, inputs: Any, outputs: Any, expectations: Any, trace: Any) -> bool:
            return bool(outputs == expectations.get("answer") and not outputs.endswith("7"))

        result = eve.evaluation.evaluate(None, "qa-eval", [exact], name="exact-match")
        judge = eve.evaluation.register_scorer(
            Judge("polite", rubric="Is {outputs} polite?", model="judge-small",
                  endpoint="http://127.0.0.1:9/v1", output="bool")
        )  # fmt: skip
        dataset = eve.evaluation.get_dataset("qa-eval")
        assert dataset.version_id is not None
        eve.evaluation.record_agreement(
            judge.id, dataset.version_id, "polite",
            {"accuracy": 0.9, "cohen_kappa": 0.75, "n": 40, "skipped": 2},
        )  # fmt: skip
    return Seeded(trace_id, error_id, pending.id, rejected.id, result.run_id)


@pytest.fixture(scope="module")
def ui_seed() -> Any:
    return _seed


def _text(page: str) -> str:
    """The words of an HTML page's <main> (markup dropped, entities decoded)."""
    main = re.search(r"<main[^>]*>(.*?)</main>", page, re.S)
    assert main, page[:300]
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", main.group(1)).split()))


def _pages(seeded: Seeded) -> list[str]:
    return [
        "/ui/prompts",
        "/ui/prompts?q=supp",
        "/ui/prompts/support",
        "/ui/prompts/support/versions/1",
        "/ui/prompts/support/versions/2",
        "/ui/prompts/support/versions/staging",
        "/ui/prompts/support/diff?a=1&b=2",
        "/ui/prompt-approvals",
        "/ui/prompt-approvals?status=any",
        "/ui/traces",
        f"/ui/traces/{seeded.trace_id}",
        f"/ui/traces/{seeded.error_trace_id}",
        "/ui/gateway",
        "/ui/gateway?window=1h",
        "/ui/gateway?window=7d",
        f"/ui/gateway/routes/{ROUTE}",
        "/ui/evaluations",
        f"/ui/evaluations/{seeded.eval_run}",
        "/ui/evaluations/judges",
        f"/ui/lineage?subject={seeded.trace_id}&kind=trace",
        "/ui/lineage?subject=prompts:/support/2&kind=prompt_version",
    ]


def test_every_llm_page_loads_for_a_viewer_without_raw_markup_or_secrets(ui_server: Any) -> None:
    seeded: Seeded = ui_server.seeded
    with _session(ui_server, "vic") as http:
        for path in _pages(seeded):
            answer = http.get(path)
            assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text[:500]}"
            # Hostile text is escaped wherever it shows; no script tag but the page's own.
            assert "<script>window.pwned" not in answer.text, path
            assert SECRET_VALUE not in answer.text, path
            assert "/approve" not in answer.text, f"{path}: a viewer sees an Approve form"


def test_prompt_pages_show_versions_aliases_templates_and_diffs(ui_server: Any) -> None:
    with _session(ui_server, "vic") as http:
        listing = _text(http.get("/ui/prompts").text)
        assert "support" in listing and "staging → v1" in listing
        version = http.get("/ui/prompts/support/versions/2").text
        assert "You help. &lt;script&gt;window.pwned" in version
        assert "temperature" in _text(version) and "system" in _text(version)
        diff = http.get("/ui/prompts/support/diff?a=1&b=2").text
        assert 'class="diff-add"' in diff and 'class="diff-del"' in diff
        # The alias resolves to the version it points at.
        assert "support v1" in _text(http.get("/ui/prompts/support/versions/staging").text)
        paged = _text(http.get("/ui/prompts?limit=2").text)
        assert "Next" in paged and "other-2" not in paged
        assert "other-2" in _text(http.get("/ui/prompts?limit=2&offset=2").text)


def test_traces_list_filters_and_trace_page_draws_the_tree(ui_server: Any) -> None:
    seeded: Seeded = ui_server.seeded
    with _session(ui_server, "vic") as http:
        everything = http.get("/ui/traces").text
        assert seeded.trace_id[:12] in everything and seeded.error_trace_id[:12] in everything
        for query in ("status=ERROR", "filter=status+%3D+%27ERROR%27"):
            only = http.get(f"/ui/traces?{query}").text
            assert seeded.error_trace_id[:12] in only and seeded.trace_id[:12] not in only
        for query in (f"route={ROUTE}", "prompt=support", "prompt=support/2"):
            linked = http.get(f"/ui/traces?{query}").text
            assert seeded.trace_id[:12] in linked and seeded.error_trace_id[:12] not in linked
        assert seeded.trace_id[:12] not in http.get("/ui/traces?prompt=support/1").text
        page = http.get(f"/ui/traces/{seeded.trace_id}").text
        words = _text(page)
        assert page.count('class="span depth-') == 3 and "depth-2" in page
        assert "12 in, 30 out, 42 total" in words and "$0.001200" in words
        assert "support/2" in words and ROUTE in words and "helpful" in words
        assert "9,000 characters" in words  # the long output is capped, and says so
        assert "chat &lt;script&gt;window.pwned" in page
        # The lineage walk from the trace links to the LLM pages of what it reaches.
        graph = http.get(f"/ui/lineage?subject={seeded.trace_id}&kind=trace").text
        assert 'href="/ui/prompts/support/versions/2"' in graph
        assert f'href="/ui/gateway/routes/{ROUTE.replace("/", "%2F")}"' in graph


def test_gateway_pages_show_routes_and_usage_by_role(ui_server: Any) -> None:
    with _session(ui_server, "eve") as http:
        day = _text(http.get("/ui/gateway").text)
        assert ROUTE in day and "canary" in day and "regex (pre, block)" in day
        route = http.get(f"/ui/gateway/routes/{ROUTE}").text
        words = _text(route)
        assert "upstream-key" in words and "value never shown" in words
        assert 'id="route-requests"' in route
        # eve's day: 3 of hers (one an error) and vic's one; the week adds the older one.
        assert re.search(r"chat/support 4 1 40 80", words), words
        week = _text(http.get(f"/ui/gateway/routes/{ROUTE}?window=7d").text)
        assert re.search(r"chat/support 5 1 50 100", week)
        hour = _text(http.get(f"/ui/gateway/routes/{ROUTE}?window=1h").text)
        assert re.search(r"chat/support 3 0 30 60", hour)
    with _session(ui_server, "vic") as http:
        mine = _text(http.get(f"/ui/gateway/routes/{ROUTE}").text)
        assert "yours only" in mine and re.search(r"chat/support 1 0 10 20", mine)
        assert not re.search(r"\beve\b", mine)


def test_evaluation_pages_page_rows_and_show_agreement(ui_server: Any) -> None:
    seeded: Seeded = ui_server.seeded
    with _session(ui_server, "vic") as http:
        listing = _text(http.get("/ui/evaluations").text)
        assert "exact-match" in listing and "qa-eval@v1" in listing
        first = http.get(f"/ui/evaluations/{seeded.eval_run}").text
        assert first.count("answer ") >= 50 and "Next" in _text(first)
        assert "&lt;script&gt;window.pwned" in first
        rest = http.get(f"/ui/evaluations/{seeded.eval_run}?offset=50").text
        assert "Next" not in _text(rest) and "51\u201360 of 60" in _text(rest)
        assert rest.count('<pre class="value">answer ') == ROWS - 50
        beyond = _text(http.get(f"/ui/evaluations/{seeded.eval_run}?offset=500").text)
        assert "No rows from 500" in beyond
        judges = _text(http.get("/ui/evaluations/judges").text)
        assert "polite/1" in judges and "Cohen's κ = 0.75" in judges and "qa-eval@v1" in judges


@pytest.mark.parametrize(
    "path",
    [
        "/ui/prompts?offset=-1",
        "/ui/prompts?limit=501",
        "/ui/prompts?limit=abc",
        "/ui/prompts/support/diff?a=1",
        "/ui/traces?filter=status+%3D%3D%3D",
        "/ui/traces?filter=nosuch.column+%3D+%271%27",
        "/ui/traces?status=MAYBE",
        "/ui/traces?offset=-5",
        "/ui/gateway?window=2y",
        "/ui/evaluations?limit=0",
        "/ui/evaluations/nosuchrun?offset=x",
        "/ui/prompts/support/diff?a=1&b=" + "9" * 200,
    ],
)
def test_bad_query_values_are_400_pages(ui_server: Any, path: str) -> None:
    with _session(ui_server, "vic") as http:
        answer = http.get(path)
        assert answer.status_code == 400, f"{path}: {answer.status_code}"
        assert "text/html" in answer.headers["content-type"]


@pytest.mark.parametrize(
    "path",
    [
        "/ui/prompts/nosuch",
        "/ui/prompts/support/versions/9",
        "/ui/prompts/support/versions/nosuchalias",
        "/ui/traces/" + "0" * 32,
        "/ui/gateway/routes/nosuch",
        "/ui/evaluations/nosuchrun",
    ],
)
def test_unknown_names_are_404_pages(ui_server: Any, path: str) -> None:
    with _session(ui_server, "vic") as http:
        answer = http.get(path)
        assert answer.status_code == 404, f"{path}: {answer.status_code}"
        assert "text/html" in answer.headers["content-type"]


@pytest.mark.parametrize(
    "path",
    [
        "/ui/prompts/..%2F..%2Fetc%2Fpasswd",
        "/ui/prompts/support/versions/..%2F1",
        "/ui/traces/..%2F..%2Fapi",
        "/ui/gateway/routes/..%2F..%2Fsecrets",
        "/ui/evaluations/..%2F..%2Fruns",
    ],
)
def test_traversal_names_are_refused_or_not_found(ui_server: Any, path: str) -> None:
    with _session(ui_server, "vic") as http:
        answer = http.get(path)
        assert answer.status_code in (400, 404), f"{path}: {answer.status_code}"
        assert "text/html" in answer.headers["content-type"]
        assert SECRET_VALUE not in answer.text


def test_a_viewer_cannot_decide_a_prompt_request(ui_server: Any) -> None:
    seeded: Seeded = ui_server.seeded
    with _session(ui_server, "vic") as http:
        csrf = http.cookies["lw_csrf"]
        for action in ("approve", "reject"):
            answer = http.post(
                f"/ui/prompt-approvals/{seeded.reject_request}/{action}",
                data={"csrf_token": csrf, "comment": "no"},
            )
            assert answer.status_code == 403 and "viewer" in _text(answer.text)
    with _session(ui_server, "abe") as http:
        listing = http.get("/ui/prompt-approvals").text
        assert f"/ui/prompt-approvals/{seeded.reject_request}/reject" in listing
        # A rejection needs a reason: the service's refusal is a page linking back.
        refused = http.post(
            f"/ui/prompt-approvals/{seeded.reject_request}/reject",
            data={"csrf_token": http.cookies["lw_csrf"], "comment": " "},
        )
        assert refused.status_code == 400 and "Back to where you were" in refused.text
        done = http.post(
            f"/ui/prompt-approvals/{seeded.reject_request}/reject",
            data={"csrf_token": http.cookies["lw_csrf"], "comment": "not this one"},
        )
        assert done.status_code == 303
        assert "canary" not in _text(http.get("/ui/prompts").text)


def test_an_approver_approves_a_prompt_alias_in_the_browser(
    open_ui: Callable[..., Any], ui_server: Any, accessible: Any, snap: Any
) -> None:
    seeded: Seeded = ui_server.seeded
    page = open_ui("abe")
    page.goto("/ui/prompts/support")
    settle(page)
    accessible(page)
    snap(page, "llm-prompt")
    row = page.locator(f"#request-{seeded.pending_request}")
    row.locator("input[name=comment]").fill("looks right")
    with page.expect_navigation():
        row.get_by_role("button", name="Approve").click()
    settle(page)
    shown = page.inner_text("main")
    assert "production → v2" in shown and "the change is applied" in shown
    for name, path in (
        ("prompt-version", "/ui/prompts/support/versions/2"),
        ("prompt-diff", "/ui/prompts/support/diff?a=1&b=2"),
        ("trace", f"/ui/traces/{seeded.trace_id}"),
        ("traces", "/ui/traces"),
        ("route", f"/ui/gateway/routes/{ROUTE}"),
        ("evaluation", f"/ui/evaluations/{seeded.eval_run}"),
        ("judges", "/ui/evaluations/judges"),
    ):
        page.goto(path)
        settle(page)
        accessible(page)
        snap(page, f"llm-{name}")
        # The hostile text in templates, span names, inputs and rationales never ran.
        assert page.evaluate("() => window.pwned === undefined"), path
