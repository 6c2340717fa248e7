"""Signing in and out of the dashboard, and its static assets.

The login page takes an API token (``loopwright tokens create USER``), checks it as the API does
and keeps it in an HttpOnly, SameSite=Lax cookie scoped to ``/ui``: every page request is
then authenticated with it, so a revoked or expired token, or a changed role, takes effect on
the dashboard within the token cache's second, as on the API. Without auth (loopback, no
tokens) there is no login: every visitor acts as the server's user, as on the API.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ...errors import NotFound, Unauthenticated
from ..auth import LOGIN_PATH, LOGOUT_PATH, SESSION_COOKIE, UI_PREFIX, public
from ._page import csrf_checked, form_fields, fresh_csrf, redirect, render, secure

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

SESSION_SECONDS = 12 * 3600  # a browser signs in again after half a day
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
_ASSET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}")


def _next_page(target: str | None) -> str:
    """Where to go after signing in: a dashboard path only (never another site)."""
    unsafe = not target or any(c in target for c in "\\\r\n") or target.startswith("//")
    if not unsafe and target and target.startswith(f"{UI_PREFIX}/"):
        return target
    return f"{UI_PREFIX}/"


@router.get("/", dependencies=[Depends(public)])
def root(request: Request) -> Response:
    """``/``: the dashboard."""
    return redirect(request, f"{UI_PREFIX}/")


@router.get(LOGIN_PATH, dependencies=[Depends(public)])
def login_page(request: Request, next: str | None = None) -> Response:
    """The sign-in form (straight to ``next`` when the server has no auth)."""
    if not request.app.state.lw.auth_enabled:
        return redirect(request, _next_page(next))
    return render(request, "login.html", next=_next_page(next), error=None)


@router.post(LOGIN_PATH, dependencies=[Depends(public), Depends(csrf_checked)])
async def login(request: Request) -> Response:
    """Check the token, keep it in the session cookie, go on to the page asked for."""
    fields = await form_fields(request)
    target = _next_page(fields.get("next"))
    state = request.app.state.lw
    if not state.auth_enabled:
        return redirect(request, target)
    token = fields.get("token", "").strip()
    try:
        from starlette.concurrency import run_in_threadpool

        if not token:
            raise Unauthenticated("paste an API token (create one with `loopwright tokens create`)")
        await run_in_threadpool(state.tokens.authenticate, token)
    except Unauthenticated as refused:
        page = render(request, "login.html", status=401, next=target, error=str(refused))
        return page
    fresh_csrf(request)
    response = redirect(request, target)
    # Lax, so a link to a page shared in chat or mail opens signed in; a write needs the
    # Strict CSRF cookie too, and the same origin.
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_SECONDS,
        path=UI_PREFIX,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post(LOGOUT_PATH, dependencies=[Depends(public), Depends(csrf_checked)])
def logout(request: Request) -> Response:
    """Forget the session cookie (the token itself stays valid: revoke it to end it)."""
    fresh_csrf(request)
    response = redirect(request, LOGIN_PATH)
    response.delete_cookie(SESSION_COOKIE, path=UI_PREFIX)
    return response


@lru_cache(maxsize=64)
def _asset(name: str) -> bytes:
    found = resources.files("loopwright.ui").joinpath("static", name)
    if not found.is_file():
        raise NotFound(f"the dashboard has no static file {name!r}")
    return found.read_bytes()


@router.get(f"{UI_PREFIX}/static/{{name}}", dependencies=[Depends(public)])
def static(name: str) -> Response:
    """A vendored or own asset; templates link them with ``?v=<version>``, so a day's caching
    never serves an old one after an upgrade."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    if not _ASSET.fullmatch(name) or suffix not in _TYPES:
        raise NotFound(f"the dashboard has no static file {name!r}")
    body = _asset(name)
    response = Response(
        body, media_type=_TYPES[suffix], headers={"Cache-Control": "public, max-age=86400"}
    )
    return secure(response)
