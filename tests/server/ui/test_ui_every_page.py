"""Every dashboard page, crawled in Chromium over a store with something in every section
(:mod:`_ui_world`), as an admin and as a viewer.

The crawl starts at ``/ui/``, follows every navigation link, then every link (and GET form
choice) those pages hold that stays under ``/ui/``, two levels deep: one link per kind (path,
query keys and the values that pick a view, so ``?actor=ada`` stands for every actor); assets,
sign-out, JSON and downloads skipped; a crawl over :data:`MAX_PAGES` fails. Each page is
loaded once: its links are read and it is checked in the same visit. Each page must answer
200 with no console error, failed request or CSP violation, pass the axe scan, and is
screenshotted. A viewer's pages hold no state-changing form at all, and each such form found as
the admin, replayed with the viewer's session and CSRF pair, is refused for the role (403, the
page naming the viewer role, not the CSRF check) and changes nothing.

The README's screenshots come from here too: :func:`test_readme_screenshots` shoots the main
pages at a fixed 1280x800 viewport into ``build/test-artifacts/ui/readme`` and, with
``LOOPWRIGHT_UPDATE_SCREENSHOTS=1`` (``make screenshots``), into ``docs/screenshots``.
"""

from __future__ import annotations

import dataclasses
import html
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx
import pytest
from _llm_world import PROMPT, ROUTE, seed_llm
from _ui_world import DATASET, DEPLOYMENT, MODEL, MONITOR, World, seed

import loopwright as lw

MAX_PAGES = 96  # the plan holds ~90 (SQLite); each page ~1 s, and three tests plan it
# A page is left once its charts' JSON and favicon are in: leaving earlier aborts them, which
# the browser reports as failed requests.
SETTLED = "networkidle"
FORM = {"content-type": "application/x-www-form-urlencoded"}
# Not pages: assets, signing out, chart JSON, file downloads (an artifact's bytes, an SBOM).
SKIP = re.compile(r"^/ui/(static/|logout|login)|\.json(\?|$)|/artifact(\?|$)|download")
ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / "docs" / "screenshots"
README = ROOT / "README.md"
_ARTIFACTS = Path(os.environ.get("LOOPWRIGHT_TEST_ARTIFACTS", "build/test-artifacts")).resolve()
READMESHOTS = _ARTIFACTS / "ui" / "readme"
UPDATE_SCREENSHOTS = os.environ.get("LOOPWRIGHT_UPDATE_SCREENSHOTS") == "1"

# Collects Content-Security-Policy violations on window (the browser reports them as events).
CSP_WATCH = """
window.__lwCsp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__lwCsp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ` +
                      `${e.sourceFile || document.location.href}:${e.lineNumber}`);
});
"""

# Every link on the page (resolved; an SVG link's href is no string), or only the header's.
LINKS = """(nav) => Array.from(document.querySelectorAll(nav ? "header nav a[href]" : "a[href]"))
  .filter((a) => !a.hasAttribute("download"))
  .map((a) => new URL(a.getAttribute("href"), document.baseURI).href)"""

# The other choice of each GET form's select, as submitting the form with it would ask (e.g. a
# monitor's ?test=): pages a reader reaches by choosing, not by a link.
CHOICES = """() => Array.from(document.querySelectorAll("form select[name]"))
  .filter((s) => (s.form.getAttribute("method") || "get").toLowerCase() === "get")
  .flatMap((s) => Array.from(s.options).filter((o) => !o.selected).slice(0, 1).map((o) => {
    // The attribute, not form.action: a field named "action" shadows that property.
    const url = new URL(s.form.getAttribute("action") || "", document.location.href);
    const fields = new URLSearchParams(Array.from(new FormData(s.form))
      .filter(([, v]) => typeof v === "string"));
    fields.set(s.name, o.value);
    url.search = fields.toString();  // a GET form's submission replaces the action's query
    return url.href;
  }))"""

# The page's state-changing forms: method=post, other than signing out and verifying the audit
# chain (a viewer's POST: it changes nothing stored, only walks the chain).
POST_FORMS = """() => Array.from(document.querySelectorAll("form"))
  .filter((f) => (f.getAttribute("method") || "").toLowerCase() === "post")
  .filter((f) => !/\\/(logout|audit\\/verify)$/.test(new URL(f.action).pathname))"""

# Those forms' action and fields (as the browser would send them, submit button included).
FORM_DATA = f"""() => ({POST_FORMS})().map((f) => {{
  const button = f.querySelector("button[type=submit], button:not([type]), input[type=submit]");
  const data = new FormData(f, button && button.name ? button : null);
  return {{action: f.action, fields: Array.from(data.entries())
    .filter(([, v]) => typeof v === "string")}};
}})"""


@pytest.fixture(scope="module")
def ui_seed() -> Any:
    return lambda settings: dataclasses.replace(seed(settings), llm=seed_llm(settings))


def _local(url: str, base: str) -> str | None:
    """``url``'s path and query when it is a dashboard page worth visiting, else None."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != base or not parts.path.startswith("/ui/"):
        return None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return None if SKIP.search(path) else path


def _prepared(page: Any) -> Any:
    """``page``, collecting CSP violations from its next navigation on."""
    page.context.add_init_script(CSP_WATCH)
    return page


def _deep(world: World) -> list[str]:
    """Pages two clicks or more from the navigation, which the crawl starts from too."""
    run = world.run_ids[0]
    dataset = DATASET
    llm = world.llm
    assert llm is not None
    return [
        f"/ui/runs/{run}",
        f"/ui/runs/{run}/artifacts?path=notes",
        "/ui/compare?runs=" + ",".join(world.run_ids),
        f"/ui/datasets/{dataset}/versions/1",
        f"/ui/datasets/{dataset}/diff?a=1&b=2",
        f"/ui/models/{MODEL}/versions/1",
        f"/ui/pipelines/runs/{world.pipeline_run_id}",
        f"/ui/lineage?subject={world.request_ids[-1]}&kind=prediction",
        f"/ui/lineage?subject={llm.trace_id}&kind=trace",
    ]


def _view(key: str, value: str) -> str | None:
    """What a query value changes in a page's kind: the lineage graph of a run and of a
    prediction differ (``kind``), so do an artifact folder and a text or image preview (``path``,
    by its suffix); other values only filter or page the same view (None)."""
    if key == "kind":
        return value
    if key == "path":
        return PurePosixPath(value).suffix or "folder"
    return None


def _kind(path: str) -> tuple[str, tuple[tuple[str, str | None], ...]]:
    """A link's kind: its path, its query's keys and the values that pick a view
    (:func:`_view`). ``?actor=ada`` and ``?actor=eve`` are one kind (the same page filtered);
    ``?window=`` and ``?test=`` on a page are two."""
    parts = urlsplit(path)
    query = parse_qsl(parts.query, keep_blank_values=True)
    return parts.path, tuple(sorted({(key, _view(key, value)) for key, value in query}))


def _walk(page: Any, ui_server: Any, on_page: Callable[[str, Any], None]) -> list[str]:
    """The crawl, each page loaded once: ``/ui/``, the navigation and :func:`_deep`'s pages,
    then the links they hold and the links those hold (two levels), one link per
    :func:`_kind`. ``on_page(path, response)`` checks a page while it is loaded, after its links
    are read (a page that fails is still visited; ``on_page`` reports it). Returns the pages
    visited; fails, listing them, when more than :data:`MAX_PAGES` would be: a silently cut
    crawl leaves the deepest pages unchecked."""
    base = ui_server.url
    page.goto("/ui/", wait_until=SETTLED)
    nav = ["/ui/"] + [p for u in page.evaluate(LINKS, True) if (p := _local(u, base))]
    plan = list(dict.fromkeys(nav + _deep(ui_server.seeded)))
    kinds = {_kind(p) for p in plan}
    depth = dict.fromkeys(plan, 0)
    for path in plan:  # grows while it is walked: breadth first
        response = page.goto(path, wait_until=SETTLED)
        if response is not None and response.status == 200 and depth[path] < 2:
            urls = page.evaluate(LINKS, False) + page.evaluate(CHOICES)
            for found in dict.fromkeys(p for u in urls if (p := _local(u, base))):
                if _kind(found) not in kinds:
                    kinds.add(_kind(found))
                    plan.append(found)
                    depth[found] = depth[path] + 1
        assert len(plan) <= MAX_PAGES, (
            f"the crawl would visit {len(plan)} pages, more than MAX_PAGES={MAX_PAGES}; raise "
            f"it (each page takes about a second) or skip a kind of link. Beyond: "
            f"{plan[MAX_PAGES:]}"
        )
        on_page(path, response)
    return plan


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower().removeprefix("/ui")).strip("-")[:80] or "home"


def _visit(page: Any, path: str, accessible: Callable[[Any], Any]) -> list[str]:
    """Load ``path`` and check it; returns what is wrong with it (nothing: a clean page)."""
    return _checked(page, path, page.goto(path, wait_until=SETTLED), accessible)


def _checked(page: Any, path: str, response: Any, accessible: Callable[[Any], Any]) -> list[str]:
    """What is wrong with the loaded page ``path`` (``response`` its answer)."""
    if response is None or response.status != 200:
        return [f"{path}: HTTP {response and response.status}"]
    problems = []
    try:
        accessible(page)
    except AssertionError as failure:
        problems.append(f"{path}: {failure}")
    violations = page.evaluate("() => window.__lwCsp || []")
    if violations:
        problems.append(f"{path}: CSP violations {violations}")
    return problems


def _crawl(
    user: str,
    open_ui: Callable[..., Any],
    ui_server: Any,
    accessible: Any,
    snap: Any,
    check: Callable[[Any, str], list[str]] = lambda page, path: [],
) -> list[str]:
    """Visit every planned page as ``user``; fails listing every page's problems (a page's
    own ``check`` included). Returns the pages visited."""
    page = _prepared(open_ui(user))
    problems: list[str] = []

    def on_page(path: str, response: Any) -> None:
        found = _checked(page, path, response, accessible)
        problems.extend(found or check(page, path))
        snap(page, f"every-{user}-{_slug(path)}")

    visited = _walk(page, ui_server, on_page)
    assert not problems, f"{len(problems)} problems on {len(visited)} pages:\n" + "\n".join(
        problems
    )
    return visited


def _assert_reached(visited: list[str], world: World) -> None:
    """The crawl reached the seeded records through the section pages' own links, and enough
    pages to be a crawl."""
    reached = {path.split("?")[0] for path in visited}
    for wanted in (
        f"/ui/experiments/{world.experiment_id}",
        f"/ui/models/{MODEL}",
        f"/ui/deployments/{DEPLOYMENT}",
        f"/ui/monitoring/{MONITOR}",
    ):
        assert wanted in reached, f"no page links to {wanted}; reached: {sorted(reached)}"
    llm = world.llm
    assert llm is not None
    for wanted in (
        f"/ui/prompts/{PROMPT}",
        f"/ui/prompts/{PROMPT}/versions/2",
        f"/ui/prompts/{PROMPT}/diff",
        "/ui/prompt-approvals",
        f"/ui/traces/{llm.trace_id}",
        f"/ui/gateway/routes/{ROUTE}",
        f"/ui/evaluations/{llm.evaluation_run_id}",
        "/ui/evaluations/judges",
    ):
        assert wanted in reached, f"no page links to {wanted}; reached: {sorted(reached)}"
    # And the views two clicks down or behind a choice: a run's, a model version's and a
    # dataset version's lineage, a deployment's other window, a monitor's other test, a text
    # preview.
    for deeper in (
        r"/ui/lineage\?.*kind=run\b",
        r"/ui/lineage\?.*kind=model_version\b",
        r"/ui/lineage\?.*kind=dataset_version\b",
        rf"/ui/deployments/{DEPLOYMENT}\?window=",
        rf"/ui/monitoring/{MONITOR}\?test=",
        r"/artifacts\?path=[^&]+\.txt$",
    ):
        assert any(re.search(deeper, p) for p in visited), f"no {deeper} among {visited}"
    assert len(visited) >= 20, visited


@pytest.mark.timeout(900)
def test_every_page_renders_cleanly_for_an_admin(
    open_ui: Callable[..., Any], ui_server: Any, accessible: Any, snap: Any
) -> None:
    visited = _crawl("ada", open_ui, ui_server, accessible, snap)
    _assert_reached(visited, ui_server.seeded)


@pytest.mark.timeout(900)
def test_every_page_renders_for_a_viewer_without_write_forms(
    open_ui: Callable[..., Any], ui_server: Any, accessible: Any, snap: Any
) -> None:
    def no_write_forms(page: Any, path: str) -> list[str]:
        # In the DOM at all, not only visible: a hidden form is one CSS or script change away.
        actions = page.evaluate(f"() => ({POST_FORMS})().map((f) => f.action)")
        return [f"{path}: a viewer's page holds a POST form to {a}" for a in actions]

    visited = _crawl("vic", open_ui, ui_server, accessible, snap, no_write_forms)
    _assert_reached(visited, ui_server.seeded)


def test_the_csp_watch_sees_a_blocked_inline_script(browser: Any, ui_server: Any) -> None:
    """The crawl's CSP check can fail: an inline script the policy blocks is collected."""
    context = browser.new_context(base_url=ui_server.url)
    try:
        page = _prepared(context.new_page())
        page.goto("/ui/login", wait_until=SETTLED)
        assert page.evaluate("() => window.__lwCsp") == []
        page.evaluate(
            """() => { const s = document.createElement("script");
                       s.textContent = "window.__ran = 1"; document.body.append(s); }"""
        )
        page.wait_for_function("() => window.__lwCsp.length > 0")
        assert page.evaluate("() => window.__ran") is None
        assert "script-src" in page.evaluate("() => window.__lwCsp[0]")
    finally:
        context.close()


def _state(ui_server: Any) -> tuple[Any, ...]:
    """What a refused write must leave alone: the audit log (every change is recorded there)
    and the approval requests."""
    client = lw.connect(ui_server.settings.db_uri, home=ui_server.settings.home, user="ada")
    try:
        events = client.audit_events()
        requests = client.registry.requests(status=None)
        return (
            len(events),
            events[-1].id if events else None,
            sorted((r.id, r.status) for r in requests),
        )
    finally:
        client.close()


def _said(page: str) -> str:
    """An error page's words: its ``<main>`` without markup (the rest of the page names the
    CSRF token in its forms and headers whatever the error)."""
    main = re.search(r"<main[^>]*>(.*?)</main>", page, re.S)
    assert main, f"the refusal is not a dashboard page: {page[:300]}"
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", main.group(1)).split()))


@pytest.fixture
def viewer_http(ui_server: Any) -> Iterator[tuple[httpx.Client, str]]:
    """An HTTP client signed in as vic through the login form, and its CSRF token."""
    with httpx.Client(base_url=ui_server.url, timeout=30) as http:
        http.get("/ui/login")
        csrf = http.cookies["lw_csrf"]
        signed = http.post("/ui/login", data={"token": ui_server.tokens["vic"], "csrf_token": csrf})
        assert signed.status_code == 303, signed.text
        yield http, http.cookies.get("lw_csrf") or csrf


@pytest.mark.timeout(900)
def test_the_admins_write_forms_are_refused_to_a_viewer(
    open_ui: Callable[..., Any], ui_server: Any, viewer_http: tuple[httpx.Client, str]
) -> None:
    page = _prepared(open_ui("ada"))
    forms: dict[str, list[tuple[str, str]]] = {}

    def collect(path: str, response: Any) -> None:
        if response is not None and response.status == 200:  # the crawls report the others
            for form in page.evaluate(FORM_DATA):
                forms.setdefault(form["action"], form["fields"])

    _walk(page, ui_server, collect)
    world: World = ui_server.seeded
    approve = f"{ui_server.url}/ui/approvals/{quote(world.pending_request_id)}/approve"
    # The viewer crawl's form check can fail: it finds the admin's approve form.
    assert approve in forms, f"no approve form for the pending request among {sorted(forms)}"
    http, csrf = viewer_http
    before = _state(ui_server)
    wrong = []
    for action, fields in forms.items():
        body = urlencode([(k, csrf if k == "csrf_token" else v) for k, v in fields])
        answer = http.post(action, content=body, headers=FORM)
        # Refused for the role, not for the CSRF pair (checked first, also a 403): a broken
        # pair would hide whether the role is checked at all.
        if answer.status_code != 403:
            wrong.append(f"POST {action}: HTTP {answer.status_code}")
        elif "viewer" not in (said := _said(answer.text)) or "CSRF" in said:
            wrong.append(f"POST {action}: refused, but not for the role: {said}")
        if _state(ui_server) != before:
            wrong.append(f"POST {action} changed the store")
            before = _state(ui_server)
    assert not wrong, f"{len(forms)} write forms replayed as a viewer:\n" + "\n".join(wrong)


# --- README screenshots ------------------------------------------------------------------------


# docs/screenshots/<name>.png: the README's dashboard section shows these.
def _readme_pages(world: World) -> dict[str, str]:
    return {
        "overview": "/ui/",
        "runs": f"/ui/experiments/{world.experiment_id}",
        "run": f"/ui/runs/{world.run_ids[0]}",
        "compare": "/ui/compare?runs=" + ",".join(world.run_ids),
        "model-version": f"/ui/models/{MODEL}/versions/1",
        "approvals": "/ui/approvals",
        "deployment": f"/ui/deployments/{DEPLOYMENT}",
        "monitoring": f"/ui/monitoring/{MONITOR}",
        "lineage": f"/ui/lineage?subject={world.request_ids[-1]}&kind=prediction",
        "audit": "/ui/audit",
    }


README_SHOTS = (
    *("overview", "runs", "run", "compare", "model-version", "approvals"),
    *("deployment", "monitoring", "lineage", "audit"),
)


@pytest.mark.timeout(600)
def test_readme_screenshots(
    open_ui: Callable[..., Any], ui_server: Any, accessible: Any, snap: Any
) -> None:
    pages = _readme_pages(ui_server.seeded)
    assert tuple(pages) == README_SHOTS
    page = _prepared(open_ui("ada"))
    page.set_viewport_size({"width": 1280, "height": 800})
    READMESHOTS.mkdir(parents=True, exist_ok=True)
    # One backend is enough for the README (SQLite: runs everywhere).
    update = UPDATE_SCREENSHOTS and ui_server.backend == "sqlite"
    for name, path in pages.items():
        problems = _visit(page, path, accessible)
        assert not problems, problems
        snap(page, f"readme-{name}")
        shot = page.screenshot(full_page=False, type="png")
        (READMESHOTS / f"{name}-{ui_server.backend}.png").write_bytes(shot)
        if update:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            (SCREENSHOTS / f"{name}.png").write_bytes(shot)


def test_the_readme_shows_screenshots_that_exist() -> None:
    text = README.read_text(encoding="utf-8")
    shown = re.findall(r"docs/screenshots/([^)\s\"'>]+)", text)
    missing = [name for name in shown if not (SCREENSHOTS / name).is_file()]
    assert not missing, f"README.md shows screenshots not in docs/screenshots: {missing}"
    unknown = sorted({n for n in shown} - {f"{n}.png" for n in README_SHOTS})
    assert not unknown, (
        f"README.md shows {unknown}, which `make screenshots` does not write "
        f"(it writes {README_SHOTS}); add them to _readme_pages or use those names"
    )
