"""Run search over both APIs of a real server (native /api/v1 and MLflow /api/2.0): filters are
bounded with a clear 400, never a database error; a run whose heartbeat stopped reads the same
everywhere (STALE natively, RUNNING to MLflow, which has no such status)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import loopwright as lw
from loopwright._ids import now_ms
from loopwright.store import schema as t
from loopwright.store.filters import (
    MAX_COMPARISONS,
    MAX_FILTER_CHARS,
    MAX_ORDER_KEYS,
    MAX_PATTERN_CHARS,
)
from loopwright.store.home import open_store
from loopwright.tracking import RunStatus

LiveServer = Any  # tests/server/conftest.py's fixture: .url, .settings …
NATIVE = "/api/v1/runs/search"
MLFLOW = "/api/2.0/mlflow/runs/search"


def _search(http: httpx.Client, api: str, filter_string: str) -> httpx.Response:
    body: dict[str, Any] = {"filter": filter_string}
    if api == MLFLOW:
        body["experiment_ids"] = ["0"]
    # json.dumps escapes lone surrogates as \udXXX, which httpx's own encoder cannot send.
    headers = {"content-type": "application/json"}
    return http.post(api, content=json.dumps(body), headers=headers)


def _refused(response: httpx.Response, *fragments: str) -> None:
    assert response.status_code == 400, response.text[:500]
    text = response.text
    for fragment in fragments:
        assert fragment in text, text[:500]
    # SQLAlchemy's "[SQL: …]" and "[parameters: …]" (MLflow's own messages say "parameters")
    for leak in ("SELECT", "sqlite3", "psycopg", "[SQL", "[parameters"):
        assert leak not in text, text[:500]


@pytest.mark.parametrize("api", [NATIVE, MLFLOW])
def test_oversized_filters_are_a_400_naming_the_limit(http: httpx.Client, api: str) -> None:
    thousand = " and ".join(f"metrics.m{n} > {n}" for n in range(1000))
    _refused(_search(http, api, thousand), "too many comparisons", str(MAX_COMPARISONS))
    too_long = "params.p = '" + "x" * MAX_FILTER_CHARS + "'"
    _refused(_search(http, api, too_long), f"{MAX_FILTER_CHARS:,}")
    pattern = "params.p LIKE '" + "%_" * MAX_PATTERN_CHARS + "'"
    _refused(_search(http, api, pattern), f"{MAX_PATTERN_CHARS:,}")


@pytest.mark.parametrize("api", [NATIVE, MLFLOW])
def test_too_many_order_by_keys_are_a_400(http: httpx.Client, api: str) -> None:
    """Each key is an outer join: a hundred of them passed SQLite's 64-table limit (a 500)."""
    body: dict[str, Any] = {"order_by": [f"params.p{n}" for n in range(100)]}
    if api == MLFLOW:
        body["experiment_ids"] = ["0"]
    _refused(http.post(api, json=body), f"the limit is {MAX_ORDER_KEYS}")


@pytest.mark.parametrize("api", [NATIVE, MLFLOW])
@pytest.mark.parametrize("char", ["\x00", "\ud800"])
def test_unstorable_characters_in_a_filter_are_a_400(
    http: httpx.Client, api: str, char: str
) -> None:
    """No name or value can hold NUL or a lone surrogate; the drivers would refuse them."""
    named = (f"U+{ord(char):04X}",) if api == NATIVE else ()  # MLflow's bodies refuse NUL too
    _refused(_search(http, api, f"params.p = 'a{char}'"), *named)
    _refused(_search(http, api, f"tags.`k{char}` LIKE 'a%'"), *named)


@pytest.mark.parametrize("api", [NATIVE, MLFLOW])
def test_filters_at_the_limits_run(http: httpx.Client, api: str) -> None:
    """The bounds sit below what SQLite and PostgreSQL accept (expression depth, pattern size)."""
    widest = " and ".join(f"params.p{n} != 'v{n}'" for n in range(MAX_COMPARISONS))
    assert _search(http, api, widest).status_code == 200
    longest = "params.p LIKE '" + "*" * MAX_PATTERN_CHARS + "'"  # GLOB's widest form: [*]
    assert _search(http, api, longest).status_code == 200
    glyphs = "params.p ILIKE '" + "\N{MATHEMATICAL DOUBLE-STRUCK CAPITAL A}" * MAX_PATTERN_CHARS
    assert _search(http, api, glyphs + "'").status_code == 200


def test_a_run_whose_heartbeat_stopped_reads_the_same_everywhere(
    live_server: LiveServer, http: httpx.Client, tmp_path: Path
) -> None:
    with lw.connect(live_server.url, home=tmp_path / "client-home") as client:
        zombie = client.tracking.create_run(experiment="beats", name="zombie")
        live = client.tracking.create_run(experiment="beats", name="live")
        with open_store(live_server.settings) as store, store.db.write() as conn:
            conn.execute(
                t.runs.update()
                .where(t.runs.c.id == zombie.id)
                .values(heartbeat_at=now_ms() - 10 * 60_000)
            )
        assert client.get_run(zombie.id).status is RunStatus.STALE
        assert client.get_run(live.id).status is RunStatus.RUNNING
        assert [r.id for r in client.search_runs("attributes.status = 'STALE'")] == [zombie.id]
        assert [r.id for r in client.search_runs("status = 'RUNNING'")] == [live.id]
        experiment_id = zombie.experiment_id

    native = http.get(f"/api/v1/runs/{zombie.id}").json()
    assert native["status"] == "STALE"
    found = http.post(NATIVE, json={"filter": "status = 'STALE'"}).json()["runs"]
    assert [(r["id"], r["status"]) for r in found] == [(zombie.id, "STALE")]

    # MLflow has no STALE: the run stays RUNNING there, in what it shows and in what it finds.
    info = http.get("/api/2.0/mlflow/runs/get", params={"run_id": zombie.id}).json()
    assert info["run"]["info"]["status"] == "RUNNING"
    running = http.post(
        MLFLOW, json={"experiment_ids": [experiment_id], "filter": "status = 'RUNNING'"}
    ).json()["runs"]
    assert sorted(r["info"]["run_id"] for r in running) == sorted([zombie.id, live.id])
    assert {r["info"]["status"] for r in running} == {"RUNNING"}
    stale = http.post(
        MLFLOW, json={"experiment_ids": [experiment_id], "filter": "status = 'STALE'"}
    ).json()
    assert stale.get("runs", []) == []


def test_experiment_and_logged_model_search_take_escaped_wildcards_literally(
    http: httpx.Client,
) -> None:
    """They were matched in memory by a parser of their own, which read ``\\_`` as any character;
    the one filter language gives them the meaning run and registry search always had."""
    api = "/api/2.0/mlflow"
    names = ["a_b", "axb", "a%b", "A_B"]
    experiment_ids = [
        http.post(f"{api}/experiments/create", json={"name": name}).json()["experiment_id"]
        for name in names
    ]
    for experiment_id, name in zip(experiment_ids, names, strict=True):
        created = http.post(
            f"{api}/logged-models", json={"experiment_id": experiment_id, "name": name}
        )
        assert created.status_code == 200, created.text

    def experiments(filter_string: str) -> set[str]:
        body = {"filter": filter_string, "max_results": 100}
        found = http.post(f"{api}/experiments/search", json=body).json()["experiments"]
        return {e["name"] for e in found} & set(names)

    def logged_models(filter_string: str) -> set[str]:
        body = {"experiment_ids": experiment_ids, "filter": filter_string}
        found = http.post(f"{api}/logged-models/search", json=body).json().get("models", [])
        return {m["info"]["name"] for m in found}

    for search in (experiments, logged_models):
        assert search(r"name LIKE 'a\_b'") == {"a_b"}
        assert search(r"name LIKE 'a\%b'") == {"a%b"}
        assert search(r"name ILIKE 'a\_b'") == {"a_b", "A_B"}
        assert search("name LIKE 'a_b'") == {"a_b", "axb", "a%b"}
