"""The floor: what DuckDB and sqlite3 do with no feature store around them (the anchor's
baselines, featurestore.md sections 4.2 to 4.4). Run by benchmarks/features.py, one process per
workload, each printing one JSON line:

- ``historical``: one DuckDB ASOF LEFT JOIN of the entity rows onto the feature rows' event
  times, then, for the matched (entity, event time) only, the row with the newest created time
  (the anchor's ``asof_first``: the created-time tie-break without deduplicating the whole
  table), TTL applied by nulling a match older than it; every entity row kept in its order;
  written to Parquet by DuckDB (``COPY``), timed with the write;
- ``materialize``: the newest row per entity (``arg_max`` over event then created time) read by
  DuckDB, written into a wide SQLite table (one row per entity) with ``executemany``;
- ``online``: ``SELECT ... WHERE entity_id IN (...)`` on that table into a dict of lists.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
from pathlib import Path
from typing import Any

import _features_child as child

FEATURES = [f"f{i}" for i in range(10)]

HISTORICAL = """
COPY (
  WITH e AS (
    SELECT file_row_number AS rid, entity_id, event_timestamp
    FROM read_parquet('{entities}', file_row_number = true)
  ),
  f AS (SELECT * FROM read_parquet('{features}')),
  m AS (
    SELECT e.rid, f.event_timestamp AS fts
    FROM e ASOF LEFT JOIN (SELECT entity_id, event_timestamp FROM f) f
      ON e.entity_id = f.entity_id AND e.event_timestamp >= f.event_timestamp
    WHERE f.event_timestamp >= e.event_timestamp - INTERVAL {ttl} SECOND
  ),
  picked AS (
    SELECT m.rid, arg_max(struct_pack({columns}), f.created_timestamp) AS v
    FROM m JOIN e USING (rid) JOIN f ON f.entity_id = e.entity_id AND f.event_timestamp = m.fts
    GROUP BY m.rid
  )
  SELECT e.entity_id, e.event_timestamp, {values}
  FROM e LEFT JOIN picked p USING (rid) ORDER BY e.rid
) TO '{out}' (FORMAT parquet)
"""

LATEST = """
SELECT entity_id, {last}
FROM read_parquet('{features}') WHERE event_timestamp BETWEEN $1 AND $2 GROUP BY entity_id
"""


def _connect(threads: int | None) -> Any:
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    return con


def historical(args: argparse.Namespace) -> dict[str, Any]:
    sql = HISTORICAL.format(
        entities=args.entities,
        features=args.features,
        ttl=args.ttl,
        columns=", ".join(f"{name} := f.{name}" for name in FEATURES),
        values=", ".join(f"p.v.{name} AS {name}" for name in FEATURES),
        out=args.out,
    )
    con = _connect(args.threads)
    walls, cpus, _ = child.timed(lambda: con.execute(sql), args.repeat)
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{args.out}')").fetchone()
    return {"wall_s": walls, "cpu_s": cpus, "rows_out": rows[0] if rows else None}


def _materialize(con: Any, features: Path, db: Path) -> int:
    last = ", ".join(
        f"arg_max({name}, (event_timestamp, created_timestamp)) AS {name}" for name in FEATURES
    )
    last += ", max(event_timestamp) AS event_timestamp"
    window = con.execute(
        f"SELECT min(event_timestamp), max(event_timestamp) FROM read_parquet('{features}')"
    ).fetchone()
    reader = con.execute(LATEST.format(last=last, features=features), list(window))
    db.unlink(missing_ok=True)
    online = sqlite3.connect(db)
    columns = ", ".join(f"{name} REAL" for name in FEATURES)
    online.execute(
        f"CREATE TABLE stats (entity_id INTEGER PRIMARY KEY, {columns}, event_timestamp TEXT)"
    )
    marks = ", ".join("?" * (len(FEATURES) + 2))
    written = 0
    while batch := reader.fetchmany(10_000):
        rows = [(*row[:-1], row[-1].isoformat()) for row in batch]
        online.executemany(f"INSERT OR REPLACE INTO stats VALUES ({marks})", rows)
        written += len(rows)
    online.commit()
    online.close()
    return written


def materialize(args: argparse.Namespace) -> dict[str, Any]:
    con = _connect(args.threads)
    walls, cpus, written = child.timed(
        lambda: _materialize(con, args.features, args.db), args.repeat
    )
    return {
        "wall_s": walls,
        "cpu_s": cpus,
        "rows_written": written,
        "online_db_mib": args.db.stat().st_size / child.MIB,
    }


def online(args: argparse.Namespace) -> dict[str, Any]:
    db = sqlite3.connect(args.db)
    figures: dict[str, Any] = {}
    for batch in args.batch:
        rng = random.Random(batch)
        batches = [
            [rng.randrange(10_000) for _ in range(batch)] for _ in range(args.calls + args.warmup)
        ]
        sql = f"SELECT entity_id, {', '.join(FEATURES)} FROM stats WHERE entity_id IN "
        sql += f"({', '.join('?' * batch)})"

        def lookup(ids: list[int], sql: str = sql) -> dict[str, list[Any]]:
            found = {row[0]: row[1:] for row in db.execute(sql, ids)}
            out: dict[str, list[Any]] = {"entity_id": ids}
            for i, name in enumerate(FEATURES):
                out[name] = [found[k][i] if k in found else None for k in ids]
            return out

        figures[str(batch)] = child.latencies(lookup, batches, args.warmup)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", choices=("historical", "materialize", "online"))
    parser.add_argument("--features", type=Path)
    parser.add_argument("--entities", type=Path)
    parser.add_argument("--ttl", type=int, default=24 * 3600)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    work = {"historical": historical, "materialize": materialize, "online": online}
    child.report(work[args.workload](args))


if __name__ == "__main__":
    main()
