"""Several processes register versions of one (not yet existing) model at once: the numbers come
out 1..N with no gap and no duplicate, on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from _fake_package import make_package

from loopwright.config import resolve_settings
from loopwright.store import schema as t
from loopwright.store.audit import events, verify_chain
from loopwright.store.home import open_store

PROCESSES = 4
VERSIONS_EACH = 10

WORKER = """
import sys, time
from loopwright.config import resolve_settings
from loopwright.registry.service import RegistryService
from loopwright.store.home import open_store

home, db_uri, package, start_at, count, worker = sys.argv[1:]
time.sleep(max(0.0, float(start_at) - time.time()))
with open_store(resolve_settings(home=home, db_uri=db_uri, user=worker)) as store:
    registry = RegistryService(store)
    for _ in range(int(count)):
        print(registry.register("churn", package).version, flush=True)
"""


def _package(folder: Path) -> Path:
    return make_package(folder)


def test_concurrent_registrations_number_versions_without_gaps(tmp_path: Path, db_uri: str) -> None:
    home, package = tmp_path / "home", _package(tmp_path / "pkg")
    start_at = time.time() + 2.0  # all start together, before the model exists
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(home),
                db_uri,
                str(package),
                str(start_at),
                str(VERSIONS_EACH),
                f"w{n}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    outputs = [proc.communicate(timeout=240) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    reported = sorted(int(line) for out, _ in outputs for line in out.split())
    total = PROCESSES * VERSIONS_EACH
    assert reported == list(range(1, total + 1))

    with open_store(resolve_settings(home=home, db_uri=db_uri)) as store:
        v = t.model_versions.c
        with store.db.read() as conn:
            rows = conn.execute(sa.select(v.version, v.created_by).order_by(v.version)).all()
            models = conn.execute(sa.select(t.registered_models.c.name)).scalars().all()
        assert [row.version for row in rows] == list(range(1, total + 1))
        assert Counter(row.created_by for row in rows) == {
            f"w{n}": VERSIONS_EACH for n in range(PROCESSES)
        }
        assert models == ["churn"]
        actions = Counter(e.action for e in events(store.db))
        assert actions == {"registered_model.create": 1, "model_version.create": total}
        assert verify_chain(store.db).ok
