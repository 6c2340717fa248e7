"""The request guard on a real server: every route, an oversized body, with and without a token.

Without a token the server answers 401 before it reads a byte of the body; with one it answers
413 (never a success, never a server error) having read at most the route's cap. Streaming
uploads have their own cap, ``max_upload_bytes``; the JSON cap is ``max_request_bytes``.
"""

from __future__ import annotations

import json
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from _routes import all_routes

from loopwright.config import resolve_settings
from loopwright.server.app import create_app

JSON_CAP = 64 << 10
UPLOAD_CAP = 128 << 10
HUGE = 1 << 30  # announced, never sent
_CHUNK = 16 << 10
_BUDGET = 48 << 20  # more than loopback socket buffers hold: a server reading on would take it


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    sent: int  # body bytes the client got to send before the answer


@pytest.fixture
def small_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPWRIGHT_MAX_REQUEST_BYTES", str(JSON_CAP))
    monkeypatch.setenv("LOOPWRIGHT_MAX_UPLOAD_BYTES", str(UPLOAD_CAP))


@pytest.fixture
def server(small_caps: None, auth_server: Any) -> Any:
    """``auth_server`` (SQLite and PostgreSQL) with small caps, so that bodies past them are
    quick to send."""
    return auth_server


def _read_answer(sock: socket.socket, sent: int) -> Answer:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"the server closed the connection without answering ({data!r})"
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    size = int(length[1]) if length else 0
    while len(rest) < size:
        piece = sock.recv(65536)
        if not piece:
            break
        rest += piece
    html = re.search(rb"(?im)^content-type:\s*text/html", head)  # the dashboard's pages
    body = {"page": rest.decode(errors="replace")} if html else json.loads(rest) if rest else {}
    return Answer(status, body, sent)


def ask(
    url: str,
    method: str,
    path: str,
    headers: dict[str, str],
    *,
    chunked: bool = False,
    send_body: bool = True,
) -> Answer:
    """Send the request head (an announced ``HUGE`` body, or a chunked one), then, if
    ``send_body``, chunks only while the server has not answered; return its answer."""
    where = urlsplit(url)
    head = {"Host": where.netloc, "Connection": "close", **headers}
    head |= {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(HUGE)}
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in head.items()), "", ""]
    with socket.create_connection((where.hostname, where.port), timeout=20) as sock:
        sock.sendall("\r\n".join(lines).encode())
        sent = 0
        piece = f"{_CHUNK:x}\r\n".encode() + b"x" * _CHUNK + b"\r\n"
        while send_body and chunked and sent < _BUDGET and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(piece)
            except OSError:  # the server answered and closed
                break
            sent += _CHUNK
        try:
            return _read_answer(sock, sent)
        except TimeoutError:
            pytest.fail(f"{method} {path}: no answer; the server waits for the body")


def _concrete(path: str) -> str:
    """A path of the route's shape; path parameters hold the substrings the old guard trusted."""

    def value(match: re.Match[str]) -> str:
        if match[2] == ":path":
            return "d/blobs/artifacts/files/mlflow-artifacts/artifacts/f.txt"
        return "0" * 64 if match[1] == "blob_hash" else f"p-{match[1]}"

    return re.sub(r"\{(\w+)(:\w+)?\}", value, path)


def _requests(tmp_path: Path) -> Iterator[tuple[str, str, bool]]:
    """(method, concrete path, streams) for every route of the app."""
    app = create_app(resolve_settings(home=tmp_path / "routes-home"), auth=False)
    for route in all_routes(app.routes):
        streams = getattr(getattr(route, "endpoint", None), "lw_streams_body", False)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            yield method, _concrete(route.path), streams


def _too_large(answer: Answer, setting: str) -> bool:
    message = str(answer.body.get("message", ""))
    return (
        answer.status == 413 and setting in message and f"LOOPWRIGHT_{setting.upper()}" in message
    )


def _dashboard_form_refusals(url: str, method: str, path: str, admin: dict[str, str]) -> list[str]:
    """The dashboard's forms: at most FORM_BYTES, whoever sends them; without a session only
    sign-in and sign-out get as far as the cap (the rest are refused first, 401)."""
    from loopwright.server._limits import FORM_BYTES
    from loopwright.server.auth import LOGIN_PATH, LOGOUT_PATH

    anyone = path in (LOGIN_PATH, LOGOUT_PATH)
    # A page asked for without a session goes to the sign-in page (303), a form gets 401.
    refused = 413 if anyone else 303 if method == "GET" else 401
    wrong = []
    for who, headers, expected in (("anonymous", {}, refused), ("admin", admin, 413)):
        for chunked in (False, True):
            answer = ask(url, method, path, headers, chunked=chunked)
            if answer.status != expected or answer.sent > 64 * FORM_BYTES:
                wrong.append(f"{method} {path} as {who}, chunked={chunked}: {answer}")
    return wrong


def test_every_route_refuses_an_oversized_body_and_reads_none_of_it_unauthenticated(
    server: Any, tmp_path: Path
) -> None:
    requests = list(_requests(tmp_path))
    assert len(requests) > 150
    admin = {"Authorization": f"Bearer {server.tokens['boss']}"}
    wrong: list[str] = []
    for method, path, streams in requests:
        if path.startswith("/ui/"):
            wrong += _dashboard_form_refusals(server.url, method, path, admin)
            continue
        cap, setting = (
            (UPLOAD_CAP, "max_upload_bytes") if streams else (JSON_CAP, "max_request_bytes")
        )
        anonymous = ask(server.url, method, path, {})
        if anonymous.status != 401:
            wrong.append(f"{method} {path} without a token, announced: {anonymous.status}")
        # The head alone: the answer comes with none of the body sent.
        anonymous = ask(server.url, method, path, {}, chunked=True, send_body=False)
        if anonymous.status != 401:
            wrong.append(f"{method} {path} without a token, chunked: {anonymous}")
        announced = ask(server.url, method, path, admin)
        if not _too_large(announced, setting):
            wrong.append(f"{method} {path} with a token, announced: {announced}")
        chunked = ask(server.url, method, path, admin, chunked=True)
        # A streaming handler may refuse the request (no such run …) before it reads the body.
        refused_early = streams and 400 <= chunked.status < 500
        if not (_too_large(chunked, setting) or refused_early) or chunked.sent > 64 * cap:
            wrong.append(f"{method} {path} with a token, chunked: {chunked}")
    assert not wrong, "\n".join(wrong)


def test_a_bad_token_is_refused_before_the_body(server: Any) -> None:
    answer = ask(server.url, "POST", "/api/v1/experiments", {"Authorization": "Bearer nope"})
    assert answer.status == 401


def test_streamed_uploads_are_capped_by_max_upload_bytes(server: Any) -> None:
    admin = {"Authorization": f"Bearer {server.tokens['boss']}"}
    with httpx.Client(base_url=server.url, headers=admin, timeout=30) as http:
        run = http.post("/api/v1/runs", json={"experiment": "caps"}).json()
        native = f"/api/v1/runs/{run['id']}/artifacts/files/model.bin"
        mlflow = "/api/2.0/mlflow-artifacts/artifacts/{}/{}/artifacts/m.bin".format(
            run["experiment_id"], run["id"]
        )
        for path in (native, mlflow):
            # Past the JSON cap, within the upload cap: stored.
            fits = http.put(path, content=b"a" * (UPLOAD_CAP - 1))
            assert fits.status_code == 200, fits.text

            def chunks() -> Iterator[bytes]:
                for _ in range(2 * UPLOAD_CAP // _CHUNK):
                    yield b"b" * _CHUNK

            for body in (b"b" * (UPLOAD_CAP + 1), chunks()):
                refused = http.put(path, content=body)
                assert refused.status_code == 413, refused.text
                assert "max_upload_bytes" in refused.text
        listed = http.get(f"/api/v1/runs/{run['id']}/artifacts").json()
        assert {a["path"]: a["size"] for a in listed} == {
            "model.bin": UPLOAD_CAP - 1,
            "m.bin": UPLOAD_CAP - 1,
        }


def _forged_token(offset: int) -> str:
    import base64

    data = json.dumps({"offset": offset, "search": "x"}).encode()
    return base64.urlsafe_b64encode(data).decode()


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/api/v1/audit/events", {"limit": "1e20"}),
        ("GET", "/api/v1/audit/events", {"limit": str(10**20)}),
        ("GET", "/api/v1/audit/events", {"limit": "100001"}),
        ("GET", "/api/v1/audit/events", {"actor": "a\x00b"}),
        ("GET", "/api/v1/runs", {"limit": str(10**20)}),
        ("POST", "/api/v1/runs/search", {"max_results": 10**20}),
        ("POST", "/api/v1/runs/search", {"page_token": _forged_token(2**70)}),
        ("POST", "/api/2.0/mlflow/runs/search", {"max_results": 2**63 - 1}),
        ("POST", "/api/2.0/mlflow/runs/search", {"page_token": _forged_token(2**70)}),
        ("POST", "/api/2.0/mlflow/experiments/search", {"max_results": 2**63 - 1}),
        ("GET", "/api/2.0/mlflow/registered-models/search", {"max_results": str(2**62)}),
        ("GET", "/api/2.0/mlflow/model-versions/search", {"max_results": str(2**62)}),
        ("POST", "/api/2.0/mlflow/logged-models/search", {"max_results": 2**62}),
    ],
)
def test_every_user_controlled_size_is_bounded_with_a_400(
    live_server: Any, method: str, path: str, params: dict[str, Any]
) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        query, body = (params, None) if method == "GET" else (None, params)
        answer = http.request(method, path, params=query, json=body)
    assert answer.status_code == 400, answer.text
    assert "INTERNAL" not in answer.text


def test_the_audit_listing_bounds_its_limit_in_the_domain_too(tmp_path: Path) -> None:
    from loopwright.errors import InvalidInput
    from loopwright.store.audit import MAX_EVENTS, events
    from loopwright.store.home import open_store

    with open_store(resolve_settings(home=tmp_path / "home")) as store:
        for limit in (0, MAX_EVENTS + 1, 10**20, True):
            with pytest.raises(InvalidInput, match=f"1 to {MAX_EVENTS}"):
                events(store.db, limit=limit)
        assert events(store.db, limit=MAX_EVENTS) == events(store.db)


def _watchdogs() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "loopwright-query-watchdog"]


def test_validation_stops_when_its_caller_goes_away(live_server: Any, tmp_path: Path) -> None:
    import loopwright as lw
    from loopwright.data.validation import Suite

    table = tmp_path / "t.csv"
    table.write_text("x\n1\n2\n", encoding="utf-8")
    with lw.connect(live_server.url) as client:
        version = client.datasets.add("tiny", table)
    endless = Suite("endless").sql("SELECT * FROM data, range(100000000000)").to_dict()
    url = f"{live_server.url}/api/v1/dataset-versions/{version.id}/validate"

    def impatient() -> None:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url, json={"suite": endless}, timeout=httpx.Timeout(30, read=2))

    caller = threading.Thread(target=impatient)
    caller.start()
    deadline = time.monotonic() + 30
    while not _watchdogs():  # the server (in this process) is running the query
        assert time.monotonic() < deadline, "the validation never started"
        time.sleep(0.05)
    caller.join()
    deadline = time.monotonic() + 10
    while _watchdogs():
        assert time.monotonic() < deadline, "the query ran on after its caller went away"
        time.sleep(0.05)


def test_errors_of_a_cancellable_route_pass_through_unwrapped(live_server: Any) -> None:
    url = f"{live_server.url}/api/v1/dataset-versions/0/validate"
    answer = httpx.post(url, json={"suite": {}}, timeout=30)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "INVALID_PARAMETER_VALUE"


def _minimal_body(route: Any) -> dict[str, Any]:
    """The route's body model with its required fields filled with plain values."""
    field = getattr(route, "body_field", None)
    model = getattr(getattr(field, "field_info", None), "annotation", None)
    plain = {str: "Production", int: 1, float: 1.0, bool: True}
    fields = getattr(model, "model_fields", {})
    return {
        name: plain.get(info.annotation, {}) for name, info in fields.items() if info.is_required()
    }


def _integer_params(route: Any) -> set[str]:
    dependant = getattr(route, "dependant", None)
    params = [*dependant.path_params, *dependant.query_params] if dependant else []
    return {p.name for p in params if p.field_info.annotation in (int, int | None)}


def test_integers_past_64_bits_in_paths_and_queries_are_never_a_server_error(
    live_server: Any, tmp_path: Path
) -> None:
    """Every integer path or query parameter of the app, given 10**30."""
    app = create_app(resolve_settings(home=tmp_path / "routes-home"), auth=False)
    huge = str(10**30)
    tried, wrong = 0, []
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        assert http.post("/api/v1/models", json={"name": "p-name"}).status_code == 201
        for route in all_routes(app.routes):
            ints = _integer_params(route)
            if not ints:
                continue
            path = route.path
            for name in ints:
                path = path.replace(f"{{{name}}}", huge)
            path = _concrete(path)
            query = {name: huge for name in ints if f"{{{name}}}" not in route.path}
            body = _minimal_body(route) if route.body_field else None
            for method in route.methods - {"HEAD"}:
                answer = http.request(method, path, params=query, json=body)
                tried += 1
                if answer.status_code >= 500:
                    wrong.append(f"{method} {path} {query}: {answer.status_code} {answer.text}")
    assert tried >= 8
    assert not wrong, "\n".join(wrong)
