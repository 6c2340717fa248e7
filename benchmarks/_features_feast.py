"""Feast's contender, run by benchmarks/features.py inside benchmarks/.venvs/feast (feast 0.67).

One process per workload (its peak RSS is the workload's), each printing one JSON line:

- ``historical --offline file|duckdb``: ``get_historical_features(entity_df, features).to_df()``
  timed (reading the entity Parquet is not), the last result written to ``--out`` (not timed);
- ``materialize``: ``store.materialize(start, end)`` over the whole data window into the SQLite
  online store, a fresh repo (registry and online db) per run, as the anchor did;
- ``online``: ``get_online_features(...).to_dict()`` for random entity ids, batches of 1 and 100;
- ``http``: ``feast serve --workers 1`` on 127.0.0.1, ``POST /get-online-features`` with urllib.

The repo: one entity ``entity_id`` (int64), one feature view ``stats`` (f0..f9 float32, TTL 24 h,
FileSource with event and created timestamps), one feature service ``bench``; the online store
SQLite, the offline store ``file`` (dask, Feast's default) or ``duckdb`` (ibis).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import _features_child as child

FEATURES = [f"f{i}" for i in range(10)]
REFS = [f"stats:{name}" for name in FEATURES]


def _definitions(features: Path, ttl: int) -> list[Any]:
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float32

    entity = Entity(name="entity", join_keys=["entity_id"], value_type=ValueType.INT64)
    source = FileSource(
        path=str(features),
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
    )
    stats = FeatureView(
        name="stats",
        entities=[entity],
        ttl=timedelta(seconds=ttl),
        schema=[Field(name=name, dtype=Float32) for name in FEATURES],
        source=source,
        online=True,
    )
    return [entity, stats, FeatureService(name="bench", features=[stats])]


def setup(repo: Path, features: Path, offline: str, ttl: int) -> Any:
    """A fresh repo at ``repo`` with the definitions applied (``store.apply``, what ``feast
    apply`` does after importing the repo); returns its FeatureStore."""
    from feast import FeatureStore

    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(
        f"project: bench\nregistry: {repo / 'registry.db'}\nprovider: local\n"
        f"online_store:\n  type: sqlite\n  path: {repo / 'online.db'}\n"
        f"offline_store:\n  type: {offline}\nentity_key_serialization_version: 3\n"
    )
    store = FeatureStore(repo_path=str(repo))
    store.apply(_definitions(features, ttl))
    return store


def _window(features: Path) -> tuple[datetime, datetime]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    column = pq.read_table(features, columns=["event_timestamp"]).column(0)
    low, high = pc.min(column).as_py(), pc.max(column).as_py()
    return low - timedelta(seconds=1), high + timedelta(seconds=1)


def historical(args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd

    store = setup(args.repo, args.features, args.offline, args.ttl)
    entity_df = pd.read_parquet(args.entities)
    walls, cpus, frame = child.timed(
        lambda: store.get_historical_features(entity_df=entity_df, features=REFS).to_df(),
        args.repeat,
    )
    frame.to_parquet(args.out, index=False)
    return {"wall_s": walls, "cpu_s": cpus, "rows_in": len(entity_df), "rows_out": len(frame)}


def materialize(args: argparse.Namespace) -> dict[str, Any]:
    start, end = _window(args.features)
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(args.repeat):
        store = setup(args.repo, args.features, args.offline, args.ttl)
        wall, cpu, _ = child.timed(lambda store=store: store.materialize(start, end), 1)
        walls += wall
        cpus += cpu
    online = args.repo / "online.db"
    return {"wall_s": walls, "cpu_s": cpus, "online_db_mib": online.stat().st_size / child.MIB}


def online(args: argparse.Namespace) -> dict[str, Any]:
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(args.repo))
    figures: dict[str, Any] = {}
    for batch in args.batch:
        batches = child.entity_batches(batch, args.calls + args.warmup, batch)

        def lookup(ids: list[int]) -> Any:
            rows = [{"entity_id": i} for i in ids]
            return store.get_online_features(features=REFS, entity_rows=rows).to_dict()

        figures[str(batch)] = child.latencies(lookup, batches, args.warmup)
    return figures


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(args: argparse.Namespace) -> dict[str, Any]:
    port = _free_port()
    feast = Path(sys.executable).parent / "feast"
    command = [str(feast), "-c", str(args.repo), "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1", "--no-access-log"]
    log = open(args.repo / "serve.log", "wb")  # noqa: SIM115 (open for the server's life)
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        return child.http_latencies(
            server, base, "/get-online-features", args.repo / "serve.log", args, REFS
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", choices=("historical", "materialize", "online", "http"))
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--features", type=Path)
    parser.add_argument("--entities", type=Path)
    parser.add_argument("--offline", choices=("file", "duckdb"), default="duckdb")
    parser.add_argument("--ttl", type=int, default=24 * 3600)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("FEAST_USAGE", "False")  # no telemetry calls from the benchmark
    work = {"historical": historical, "materialize": materialize, "online": online, "http": http}
    child.report(work[args.workload](args))


if __name__ == "__main__":
    main()
