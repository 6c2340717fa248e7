"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a live
``loopwright server`` (uvicorn on 127.0.0.1) with auth on, once on SQLite and once on PostgreSQL.

- ``ui_server``: one server per test module and backend, with four users holding tokens:
  ``ada`` (admin), ``abe`` (approver), ``eve`` (editor), ``vic`` (viewer). A module fills it by
  overriding ``ui_seed`` (a module-scoped fixture returning ``seed(settings)``, run before the
  server starts; it may return anything, kept as ``ui_server.seeded``).
- ``browser``: one Chromium per test module (``LOOPWRIGHT_TEST_CHROMIUM`` or ``chromium`` on
  the PATH; ``scripts/services.sh`` installs it). Missing: the tests skip, or fail under
  ``LOOPWRIGHT_TEST_REQUIRE_SERVICES=1``.
- ``open_ui(user)``: a signed-in page in a fresh browser context. Every console error, page
  error, failed request and HTTP status >= 400 fails the test at teardown unless the test
  allowed that status (``open_ui("vic", allow=(403,))``).
- ``snap(page, name)``: a full-page screenshot under ``$LOOPWRIGHT_TEST_ARTIFACTS/ui``
  (default ``build/test-artifacts/ui``), named ``<name>-<backend>.png``.
- ``http``: an httpx client signed in as the viewer ``vic``.
- ``assert_accessible(page)``: an axe-core scan (vendored, ``vendor/axe.min.js``); serious or
  critical violations fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from loopwright.config import Settings, resolve_settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

USERS = (("ada", "admin"), ("abe", "approver"), ("eve", "editor"), ("vic", "viewer"))
_OUT = os.environ.get("LOOPWRIGHT_TEST_ARTIFACTS", "build/test-artifacts")
ARTIFACTS = Path(_OUT).resolve() / "ui"  # resolved now: each test runs in its own folder
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
REQUIRE_SERVICES = os.environ.get("LOOPWRIGHT_TEST_REQUIRE_SERVICES") == "1"
Seed = Callable[[Settings], Any]


@dataclass(frozen=True)
class UiServer:
    url: str
    settings: Settings
    backend: str  # "sqlite" or "postgres"
    tokens: dict[str, str] = field(default_factory=dict)  # user -> API token
    seeded: Any = None  # what the module's seed returned


def _chromium() -> str:
    found = os.environ.get("LOOPWRIGHT_TEST_CHROMIUM") or next(
        filter(None, (shutil.which(n) for n in ("chromium", "chromium-browser"))), None
    )
    if not found:
        message = (
            "Chromium is not installed: set LOOPWRIGHT_TEST_CHROMIUM or install Debian's "
            "chromium (scripts/services.sh start does)"
        )
        if REQUIRE_SERVICES:
            pytest.fail(message + " [LOOPWRIGHT_TEST_REQUIRE_SERVICES=1 forbids skipping]")
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (each test opens its own context). Not one per
    session: Playwright's sync API keeps its event loop marked running in the main thread while
    it is open, and later modules' ``asyncio.run`` would then refuse to start."""
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if REQUIRE_SERVICES:
            pytest.fail("playwright is not installed (pip install -e '.[dev]')")
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def ui_backend(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_database: Callable[[], AbstractContextManager[str]],
) -> Iterator[tuple[str, str]]:
    """(backend, database URL): a fresh database for the module's server."""
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("ui-db")
        yield "sqlite", f"sqlite:///{folder / 'loopwright.db'}"
        return
    with pg_database() as url:
        yield "postgres", url


@pytest.fixture(scope="module")
def ui_seed() -> Seed:
    """What the module's server holds besides its users; a module overrides this."""
    return lambda settings: None


@pytest.fixture(scope="module")
def ui_server(
    request: pytest.FixtureRequest,
    ui_backend: tuple[str, str],
    ui_seed: Seed,
    tmp_path_factory: pytest.TempPathFactory,
    serve_app: Callable[..., AbstractContextManager[str]],
) -> Iterator[UiServer]:
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService
    from loopwright.store.home import open_store

    backend, db_uri = ui_backend
    # Module-scoped: set up before the per-test isolation, so it clears the developer's
    # LOOPWRIGHT_* settings itself (as tests/conftest.py's autouse fixture does for a test).
    isolated = pytest.MonkeyPatch()
    for name in list(os.environ):
        if name.startswith("LOOPWRIGHT_") and not name.startswith("LOOPWRIGHT_TEST_"):
            isolated.delenv(name)
    request.addfinalizer(isolated.undo)
    home = tmp_path_factory.mktemp("ui-home")
    settings = resolve_settings(home=home, db_uri=db_uri, user="ada")
    tokens = {}
    with open_store(settings) as store:
        users = UserService(store, actor="ada")
        for name, role in USERS:
            users.add(name, role)
            tokens[name] = TokenService(store, actor="ada").create(name).secret
    seeded = ui_seed(settings)
    with serve_app(settings, auth=True) as url:
        yield UiServer(url, settings, backend, tokens, seeded)


def login(page: Page, token: str, *, next_path: str = "/ui/") -> None:
    """Sign in through the login form and wait for the page it leads to."""
    page.goto(f"/ui/login?next={next_path}")
    page.fill("#token", token)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    page.wait_for_load_state("networkidle")


@dataclass
class _Watch:
    allow: tuple[int, ...]
    problems: list[str] = field(default_factory=list)

    def response(self, response: Any) -> None:
        if response.status >= 400 and response.status not in self.allow:
            self.problems.append(f"HTTP {response.status} {response.request.method} {response.url}")

    def failed(self, request: Any) -> None:
        # The browser drops the favicon's load, or an htmx part's reload, when the page it was
        # for is left or closed while it runs: an artefact of navigating, not a server failure.
        aborted = "ERR_ABORTED" in str(request.failure)
        background = request.url.split("?")[0].endswith("/favicon.svg") or (
            request.headers.get("hx-request") == "true"
        )
        if not (aborted and background):
            self.problems.append(
                f"request failed: {request.method} {request.url} ({request.failure})"
            )

    def console(self, message: Any) -> None:
        text = message.text
        allowed = any(f"status of {status}" in text for status in self.allow)
        if message.type == "error" and not allowed:
            self.problems.append(f"console error: {text}")


@pytest.fixture
def open_ui(browser: Browser, ui_server: UiServer) -> Iterator[Callable[..., Page]]:
    """``open_ui(user="ada", allow=())``: a page signed in as ``user`` (None: not signed in)."""
    contexts: list[Any] = []
    watches: list[_Watch] = []

    def open_(user: str | None = "ada", *, allow: tuple[int, ...] = ()) -> Page:
        context = browser.new_context(
            base_url=ui_server.url,
            viewport={"width": 1280, "height": 860},
            timezone_id="UTC",  # chart axes read the same on every machine
            locale="en-US",
        )
        contexts.append(context)
        watch = _Watch(allow)
        watches.append(watch)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("console", watch.console)
        page.on("pageerror", lambda error: watch.problems.append(f"page error: {error}"))
        page.on("requestfailed", watch.failed)
        page.on("response", watch.response)
        if user is not None:
            login(page, ui_server.tokens[user])
        return page

    yield open_
    for context in contexts:
        context.close()
    problems = [p for watch in watches for p in watch.problems]
    assert not problems, "the browser saw errors:\n" + "\n".join(problems)


@pytest.fixture
def snap(ui_server: UiServer) -> Callable[[Page, str], Path]:
    def take(page: Page, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}-{ui_server.backend}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


_AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))
  }));
}"""


def assert_accessible(page: Page) -> list[dict[str, Any]]:
    """Run axe-core on the page; fail on serious or critical violations (returns the rest)."""
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = page.evaluate(_AXE_RUN)
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, f"accessibility violations on {page.url}: {bad}"
    return violations


@pytest.fixture
def http(ui_server: UiServer) -> Iterator[httpx.Client]:
    """An HTTP client signed in to the dashboard as the viewer ``vic`` (through the login form:
    its cookies hold the session and the CSRF token)."""
    from _browsing import signed_in

    with signed_in(ui_server, "vic") as client:
        yield client


@pytest.fixture
def accessible() -> Callable[[Page], list[dict[str, Any]]]:
    """:func:`assert_accessible`, for test modules (which cannot import this conftest)."""
    return assert_accessible


@pytest.fixture
def sign_in() -> Callable[..., None]:
    """:func:`login`, for test modules."""
    return login
