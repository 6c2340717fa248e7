"""The server translates and the domain persists: no router module holds SQL of its own.

Persistence for the MLflow API lives in the domain (``tracking.logged_models``,
``tracking.run_links``, ``tracking.run_rows``, ``registry.mlflow_sources``,
``store.artifact_trees``); the routers call it.
"""

from __future__ import annotations

import re
from pathlib import Path

import loopwright.server

SERVER = Path(loopwright.server.__file__).parent
SQL = re.compile(r"import sqlalchemy|store import schema|store\.schema|\.db\.(read|write)\(")
# The native API reads a stored suite by name itself so that a name is never taken for a file
# path on the server (DatasetService.validate accepts both).
ALLOWED = {"api/validation.py"}


def test_no_router_module_holds_sql() -> None:
    routers = [*SERVER.glob("api/*.py"), *SERVER.glob("mlflow/*.py")]
    assert len(routers) > 20
    offenders = sorted(
        path.relative_to(SERVER).as_posix()
        for path in routers
        if SQL.search(path.read_text()) and path.relative_to(SERVER).as_posix() not in ALLOWED
    )
    assert offenders == [], f"move their SQL into a domain service: {offenders}"
