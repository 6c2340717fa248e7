"""Without tokens the dashboard acts for whoever reaches it, so it answers only to a loopback
``Host``: a web page that points its own domain at 127.0.0.1 (DNS rebinding) gets nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from loopwright.config import resolve_settings


@pytest.fixture
def open_server(
    tmp_path: Path, serve_app: Callable[..., AbstractContextManager[str]]
) -> Iterator[str]:
    settings = resolve_settings(home=tmp_path / "home", user="dana")
    with serve_app(settings, auth=False) as url:
        yield url


def test_only_loopback_names_reach_a_dashboard_without_auth(open_server: str) -> None:
    port = open_server.rsplit(":", 1)[1]
    with httpx.Client(base_url=open_server) as http:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
            assert http.get("/ui/", headers={"Host": host}).status_code == 200, host
        for host in (f"rebind.evil.example:{port}", "evil.example", f"10.0.0.1:{port}"):
            refused = http.get("/ui/", headers={"Host": host})
            assert refused.status_code == 403, host
            assert "answers only on loopback" in refused.text
