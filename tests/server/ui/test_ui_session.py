"""Signing in and out of the dashboard, its CSRF guard and security headers, in Chromium and
over plain HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


def test_signing_in_with_a_token_opens_the_page_asked_for(
    open_ui: Callable[..., Any], ui_server: Any, snap: Callable[..., Any], accessible: Any
) -> None:
    page = open_ui(None, allow=(401,))
    page.goto("/ui/")
    assert "/ui/login" in page.url  # no session: the login page, remembering where to go
    accessible(page)
    snap(page, "login")
    page.fill("#token", "lw_not-a-real-token")
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert page.locator("[role=alert]").inner_text().startswith("the API token")
    page.fill("#token", ui_server.tokens["vic"])
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert page.url.endswith("/ui/")
    assert page.locator("header .user").inner_text().startswith("vic")
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["lw_session"]
    # Lax: a shared link opens signed in; writes need the Strict CSRF cookie and the same origin.
    assert session["httpOnly"] and session["sameSite"] == "Lax" and session["path"] == "/ui"
    assert cookies["lw_csrf"]["sameSite"] == "Strict" and cookies["lw_csrf"]["httpOnly"]
    accessible(page)
    snap(page, "overview")
    with page.expect_navigation():
        page.click("text=Sign out")
    assert "/ui/login" in page.url
    assert "lw_session" not in {c["name"] for c in page.context.cookies()}


def test_pages_carry_security_headers_and_no_session_means_login(ui_server: Any) -> None:
    with httpx.Client(base_url=ui_server.url) as http:
        first = http.get("/ui/?x=1")
        assert first.status_code == 303
        assert first.headers["location"] == "/ui/login?next=%2Fui%2F%3Fx%3D1"
        login = http.get("/ui/login")
        assert login.status_code == 200
        for name, value in HEADERS.items():
            assert login.headers[name] == value
        csp = login.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        # The API never reads the dashboard's cookie: a cookie alone is no API credential.
        http.cookies.set("lw_session", ui_server.tokens["ada"])
        assert http.get("/api/v1/experiments").status_code == 401


def test_a_form_without_its_csrf_token_is_refused(ui_server: Any) -> None:
    with httpx.Client(base_url=ui_server.url) as http:
        http.get("/ui/login")  # sets the CSRF cookie
        token = http.cookies["lw_csrf"]
        forged = http.post("/ui/login", data={"token": ui_server.tokens["ada"]})
        assert forged.status_code == 403
        assert "CSRF" in forged.text
        wrong = http.post(
            "/ui/login", data={"token": ui_server.tokens["ada"], "csrf_token": "x" * 40}
        )
        assert wrong.status_code == 403
        signed = http.post(
            "/ui/login", data={"token": ui_server.tokens["ada"], "csrf_token": token}
        )
        assert signed.status_code == 303
        assert http.get("/ui/").status_code == 200


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/api/v1/experiments", "/ui/\\\\evil"],
)
def test_after_login_only_dashboard_paths_are_followed(ui_server: Any, target: str) -> None:
    with httpx.Client(base_url=ui_server.url) as http:
        http.get("/ui/login")
        answer = http.post(
            "/ui/login",
            data={
                "token": ui_server.tokens["vic"],
                "csrf_token": http.cookies["lw_csrf"],
                "next": target,
            },
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/"


def test_static_assets_are_served_and_nothing_else(ui_server: Any) -> None:
    with httpx.Client(base_url=ui_server.url) as http:
        js = http.get("/ui/static/lw.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
        for name in ("..%2F__init__.py", "nope.js", "lw.py", ".hidden.js"):
            assert http.get(f"/ui/static/{name}").status_code == 404


def test_an_htmx_reload_without_a_session_sends_the_whole_page_to_login(ui_server: Any) -> None:
    with httpx.Client(base_url=ui_server.url) as http:
        answer = http.get(
            "/ui/",
            headers={"HX-Request": "true", "HX-Current-URL": f"{ui_server.url}/ui/?x=1"},
        )
        assert answer.status_code == 401
        assert answer.headers["hx-redirect"] == "/ui/login?next=%2Fui%2F%3Fx%3D1"


def _signed_in(http: httpx.Client, token: str) -> str:
    """Sign ``http`` in; the CSRF token its session now holds."""
    http.get("/ui/login")
    planted = http.cookies["lw_csrf"]
    answer = http.post("/ui/login", data={"token": token, "csrf_token": planted})
    assert answer.status_code == 303
    fresh = http.cookies["lw_csrf"]
    assert fresh != planted  # a token planted before the session does not outlive the login
    return fresh


def test_a_form_from_another_origin_is_refused_even_with_the_right_token(
    ui_server: Any,
) -> None:
    with httpx.Client(base_url=ui_server.url) as http:
        csrf = _signed_in(http, ui_server.tokens["abe"])
        for headers in (
            {"Origin": "https://evil.example"},
            {"Origin": "http://sub.127.0.0.1.nip.io"},
            {"Sec-Fetch-Site": "same-site"},
            {"Sec-Fetch-Site": "cross-site"},
        ):
            refused = http.post("/ui/logout", data={"csrf_token": csrf}, headers=headers)
            assert refused.status_code == 403, headers
            assert "another site" in refused.text
        own = http.post(
            "/ui/logout",
            data={"csrf_token": csrf},
            headers={"Origin": ui_server.url, "Sec-Fetch-Site": "same-origin"},
        )
        assert own.status_code == 303


def test_dashboard_forms_are_capped_small_before_they_are_read(ui_server: Any) -> None:
    with httpx.Client(base_url=ui_server.url) as http:
        http.get("/ui/login")
        csrf = http.cookies["lw_csrf"]
        big = http.post("/ui/login", data={"csrf_token": csrf, "token": "x" * 70_000})
        assert big.status_code == 413
        assert big.headers["content-type"].startswith("text/html")  # a page, not JSON
        many = "&".join(f"f{n}=1" for n in range(500)) + f"&csrf_token={csrf}"
        crowded = http.post(
            "/ui/login",
            content=many,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert crowded.status_code == 400
        assert "more than 100 fields" in crowded.text


def test_a_post_without_a_session_gets_a_page_saying_sign_in(ui_server: Any) -> None:
    with httpx.Client(base_url=ui_server.url) as http:
        http.get("/ui/login")
        answer = http.post("/ui/logout", data={"csrf_token": http.cookies["lw_csrf"]})
        # logout is open to all; an approval is not, and the guard refuses it before its body
        refused = http.post(
            "/ui/approvals/0123/approve", data={"csrf_token": http.cookies["lw_csrf"]}
        )
    assert answer.status_code == 303
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("text/html")
    assert "Sign in needed" in refused.text
