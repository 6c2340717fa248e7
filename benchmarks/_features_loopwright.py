"""Loopwright's contender, run by benchmarks/features.py in the project's venv, one process per
workload (its peak RSS is the workload's), each printing one JSON line. The store is a fresh
embedded home (SQLite + local blobs) under ``--home``; the definitions mirror Feast's repo: an
entity ``entity_id`` (int64), a view ``bench_stats`` (f0..f9 float32, TTL 24 h, a FileSource on
the generated Parquet with event and created timestamps), a service ``bench``.

- ``historical``: ``client.features.get_historical_features(path, refs)`` (the entity rows as
  their Parquet path: reading them is timed, as the floor reads them in its query; Feast is
  handed a pandas frame read beforehand). The training set is Parquet on disk; the last is
  copied to ``--out`` for the correctness check;
- ``materialize``: ``client.features.materialize()`` (all time to now) into the online store,
  a fresh home per run;
- ``online``: after a materialize (not timed), ``client.features.get_online_features(rows,
  refs)`` for random entity ids, batches of 1 and 100; SQLite by default, Redis with
  ``--online-store redis://...``. The online view has no TTL: the data is months old and a TTL
  read relative to now would serve every value as ``outside_ttl`` (Feast applies no TTL
  online, #6821, so both serve the stored values);
- ``http``: ``loopwright server`` on 127.0.0.1 over that home, ``POST /api/v1/features/online``
  with urllib, the same body shape as Feast's (``{"features": [...], "entities": {...}}``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import _features_child as child

FEATURES = [f"f{i}" for i in range(10)]
VIEW = "bench_stats"
REFS = [f"{VIEW}:{name}" for name in FEATURES]
CLI = Path(sys.executable).parent / "loopwright"


def _client(home: Path, online_store: str | None, fresh: bool) -> Any:
    import loopwright as lw

    if fresh and home.exists():
        shutil.rmtree(home)
    if online_store:
        os.environ["LOOPWRIGHT_ONLINE_STORE"] = online_store
    else:
        os.environ.pop("LOOPWRIGHT_ONLINE_STORE", None)
    return lw.connect(home=str(home))


def _apply(client: Any, features: Path, ttl: int | None) -> None:
    from loopwright.features.definitions import (
        Entity,
        FeatureService,
        FeatureView,
        Field,
        FileSource,
        to_specs,
    )

    entity = Entity("entity", join_keys={"entity_id": "int64"})
    view = FeatureView(
        VIEW,
        entities=[entity],
        source=FileSource(
            str(features),
            timestamp_field="event_timestamp",
            created_timestamp_field="created_timestamp",
        ),
        schema=[Field(name, "float32") for name in FEATURES],
        ttl=ttl,
    )
    client.features.apply(to_specs([entity, view, FeatureService("bench", features=[view])]))


def historical(args: argparse.Namespace) -> dict[str, Any]:
    client = _client(args.home, None, fresh=True)
    _apply(client, args.features, args.ttl)
    sets: list[Any] = []

    def build() -> Any:
        training_set = client.features.get_historical_features(args.entities, REFS)
        sets.append(training_set)
        return training_set

    walls, cpus, last = child.timed(build, args.repeat)
    shutil.copyfile(last.path, args.out)
    for training_set in sets:
        shutil.rmtree(training_set.path.parent, ignore_errors=True)
    client.close()
    return {"wall_s": walls, "cpu_s": cpus, "rows_out": last.rows}


def _materialize(home: Path, args: argparse.Namespace, ttl: int | None) -> tuple[Any, Any]:
    client = _client(home, args.online_store, fresh=True)
    _apply(client, args.features, ttl)
    return client, lambda: client.features.materialize([VIEW])


def materialize(args: argparse.Namespace) -> dict[str, Any]:
    walls: list[float] = []
    cpus: list[float] = []
    rows = None
    for _ in range(args.repeat):
        client, load = _materialize(args.home, args, args.ttl)
        wall, cpu, done = child.timed(load, 1)
        walls += wall
        cpus += cpu
        rows = sum(m.rows for m in done)
        client.close()
    return {"wall_s": walls, "cpu_s": cpus, "rows_written": rows}


def online(args: argparse.Namespace) -> dict[str, Any]:
    client, load = _materialize(args.home, args, None)
    load()
    figures: dict[str, Any] = {"store": args.online_store or "sqlite (default)"}
    for batch in args.batch:
        batches = child.entity_batches(batch, args.calls + args.warmup, batch)

        def lookup(ids: list[int]) -> Any:
            rows = [{"entity_id": i} for i in ids]
            return client.features.get_online_features(rows, REFS)

        figures[str(batch)] = child.latencies(lookup, batches, args.warmup)
        answer = lookup(batches[-1])
        statuses = answer.statuses[FEATURES[0]]
        figures[str(batch)]["present"] = statuses.count("present") / len(statuses)
    client.close()
    if args.online_store and args.online_store.startswith("redis"):
        _drop_redis_keys(args.online_store)
    return figures


def _drop_redis_keys(url: str) -> None:
    """Remove the benchmark's keys (its own ``?prefix=``) from a shared Redis server."""
    from urllib.parse import parse_qs, urlsplit

    import redis

    parts = urlsplit(url)
    prefix = parse_qs(parts.query).get("prefix", [""])[0]
    if not prefix:
        return  # no prefix of its own: not knowing its keys, leave the server alone
    server = redis.Redis.from_url(parts._replace(query="").geturl())
    batch = list(server.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(batch), 1000):
        server.delete(*batch[start : start + 1000])
    server.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(args: argparse.Namespace) -> dict[str, Any]:
    client, load = _materialize(args.home, args, None)
    load()
    client.close()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWRIGHT_")}
    if args.online_store:
        env["LOOPWRIGHT_ONLINE_STORE"] = args.online_store
    command = [str(CLI), "--home", str(args.home), "server", "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    log_path = args.home.parent / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        return child.http_latencies(server, base, "/api/v1/features/online", log_path, args, REFS)
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", choices=("historical", "materialize", "online", "http"))
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--entities", type=Path)
    parser.add_argument("--ttl", type=int, default=24 * 3600)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--online-store")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    work = {"historical": historical, "materialize": materialize, "online": online, "http": http}
    child.report(work[args.workload](args))


if __name__ == "__main__":
    main()
