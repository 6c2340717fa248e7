"""Errors on dashboard paths become pages, not JSON: a page without a session goes to the login
page (and comes back after it); anything else shows what went wrong and what to do."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import Response

from ...errors import LoopwrightError, Unauthenticated
from ..auth import LOGIN_PATH
from ..errors import status_for
from ._page import redirect, render, secure

__all__ = ["error_page", "ui_error"]


def ui_error(request: Request, status: int, title: str, message: str) -> Response:
    """The error page: ``title`` (e.g. "Not found") and ``message`` (what to do)."""
    return render(request, "error.html", status=status, title=title, message=message)


def _login(target: str) -> str:
    return f"{LOGIN_PATH}?next={quote(target or '/ui/', safe='')}"


def error_page(request: Request, exc: LoopwrightError) -> Response:
    """What a dashboard request that raised ``exc`` answers."""
    if isinstance(exc, Unauthenticated) and request.headers.get("hx-request") == "true":
        # htmx would swap the login page into the part it reloads: send the whole page there.
        current = urlsplit(request.headers.get("hx-current-url", ""))
        target = current.path + (f"?{current.query}" if current.query else "")
        answer = Response(status_code=401, headers={"HX-Redirect": _login(target)})
        return secure(answer)
    if isinstance(exc, Unauthenticated) and request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(request, _login(target))
    status = status_for(exc)
    title = {401: "Sign in needed", 403: "Not allowed", 404: "Not found", 409: "Conflict"}.get(
        status, "Bad request" if status < 500 else "Server error"
    )
    return ui_error(request, status, title, str(exc))
