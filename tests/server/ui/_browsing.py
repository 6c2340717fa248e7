"""What the dashboard's test modules share beside the conftest's fixtures: waiting for a page to
settle before leaving it, and a signed-in session over plain HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

__all__ = ["go", "settle", "signed_in"]


def settle(page: Any) -> None:
    """Wait until the page has loaded everything (its favicon too): a navigation started
    earlier aborts those requests, which the browser watch counts as failures."""
    page.wait_for_load_state("networkidle")


def go(page: Any, path: str) -> None:
    """Open ``path`` once the current page has settled."""
    settle(page)
    page.goto(path)


@contextmanager
def signed_in(ui_server: Any, user: str = "vic") -> Iterator[httpx.Client]:
    """A dashboard session over plain HTTP, through the login form (its cookies hold the
    session and the CSRF token)."""
    with httpx.Client(base_url=ui_server.url, timeout=30) as http:
        http.get("/ui/login")
        signed = http.post(
            "/ui/login",
            data={"token": ui_server.tokens[user], "csrf_token": http.cookies["lw_csrf"]},
        )
        assert signed.status_code == 303
        yield http
