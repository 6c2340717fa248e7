"""Feature-store benchmark: Loopwright against Feast 0.67 and a raw DuckDB/sqlite3 floor, on the
anchor's workload (../shared/anchors/featurestore.md section 3; issue 15, section 6).

    .venv/bin/python benchmarks/features.py [--size small|1m|10m] [--repeat 3]
        [--only a,b,c,d] [--redis redis://127.0.0.1:PORT/DB] [--data DIR] [--quick]
        [--calls 1000] [--max-rss-gib 16] [--json F]

Sizes (feature rows x entity rows): small 100k x 10k, 1m 1M x 100k, 10m 10M x 1M; 10,000
entities, 10 float32 features, 1% created-time ties, 2% entity rows before the first feature
row, TTL 24 h, seed 42 (_features_data; generated once under ``--data``). Every contender runs
each workload in a process of its own (peak RSS is that process's; Feast from
benchmarks/.venvs/feast, built on first use):

(a) training set: the floor (one DuckDB ASOF LEFT JOIN, _features_floor), Feast's duckdb offline
    store, Feast's file (dask) store (skipped at 10m: the anchor's run passed 16 GiB), and
    ``client.features.get_historical_features`` on an embedded store;
(b) materialize every row: Feast (duckdb offline, sqlite online), Loopwright (SQLite online
    store), the floor (DuckDB newest row per entity + sqlite3 executemany);
(c) online lookups of 1 and 100 random entities (median, p99): Feast SDK on SQLite, Loopwright
    embedded on SQLite (and Redis with ``--redis`` or LOOPWRIGHT_TEST_REDIS_URL), raw sqlite3;
    over HTTP on 127.0.0.1: ``feast serve`` against ``loopwright server``;
(d) correctness: each tool's training set on the 'check' data (the small shape plus 1% late
    rows) against the brute-force oracle (tests/features/_oracle.py) on every entity row and
    against Feast-duckdb; (a)'s results too (oracle on a 2,000-row sample): entity rows dropped
    and rows with other values, per tool.

Figures are medians of ``--repeat`` runs (wall; CPU beside it); ratios are anchor / Loopwright
(> 1: Loopwright is faster) and Loopwright / floor. The load average is printed at start and
end: on a shared machine wall times wander, the ratios in one run are the robust part.
Targets (issue 15): training set <= 1.2x the floor and >= 3x Feast-duckdb, 10m x 1m under 4 GiB;
online <= 0.05 ms (1) and <= 1 ms (100) embedded, over HTTP <= 2 ms p50; materialize >= 3x Feast.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _features_check as checking
import _features_data as data

HERE = Path(__file__).resolve().parent
FEAST_VENV = HERE / ".venvs" / "feast"
FEAST_REQUIREMENTS = ("feast[duckdb]==0.67.0",)
WORKLOADS = ("a", "b", "c", "d")
TIMEOUT = 3600
LIMITS = {"rss_gib": 16.0}  # --max-rss-gib
ORACLE_SAMPLE = 2000


class Failed(Exception):
    """A contender's process failed; the message holds the end of its output."""


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def feast_python() -> Path:
    """Feast's venv, built on first use (the anchor's version)."""
    python = FEAST_VENV / "bin" / "python"
    if not python.exists():
        print(f"building {FEAST_VENV} ({', '.join(FEAST_REQUIREMENTS)}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(FEAST_VENV)], check=True)
        install = [str(python), "-m", "pip", "install", "-q", *FEAST_REQUIREMENTS]
        subprocess.run(install, check=True)
    return python


def versions() -> str:
    probe = (
        "import importlib.metadata as m; "
        "print(', '.join(f'{p} {m.version(p)}' for p in ('feast', 'duckdb', 'pandas')))"
    )
    feast = subprocess.run(
        [str(feast_python()), "-c", probe], capture_output=True, text=True, check=True
    )
    import duckdb

    import loopwright

    return (
        f"{feast.stdout.strip()} | loopwright {loopwright.__version__}, duckdb {duckdb.__version__}"
    )


def _rss_gib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / (1024 * 1024)
    except OSError:
        pass
    return 0.0


def run(python: Path | str, script: str, *arguments: Any) -> dict[str, Any]:
    """One contender process; its last output line is its JSON result. Killed (its whole
    process group) past ``--max-rss-gib`` resident or ``TIMEOUT`` seconds, as the anchor's
    watchdog did: Feast's file store can take the shared machine's memory."""
    command = [str(python), "-W", "ignore", str(HERE / script), *map(str, arguments)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            command, stdout=out, stderr=err, cwd=HERE, start_new_session=True
        )
        started, peak = time.monotonic(), 0.0
        while process.poll() is None:
            peak = max(peak, _rss_gib(process.pid))
            elapsed = time.monotonic() - started
            if peak > LIMITS["rss_gib"] or elapsed > TIMEOUT:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                why = f"{peak:.1f} GiB RSS" if peak > LIMITS["rss_gib"] else f"{TIMEOUT} s"
                raise Failed(f"{script} {arguments[0]} killed past {why} after {elapsed:.0f} s")
            time.sleep(0.2)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    lines = stdout.strip().splitlines()
    if process.returncode != 0 or not lines:
        tail = (stdout[-1500:] + "\n" + stderr[-3000:]).strip()
        raise Failed(f"{script} {arguments[0]} failed ({process.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def attempt(label: str, work: Any) -> dict[str, Any] | None:
    """``work()``, or None with the failure printed: one contender failing does not stop the
    others."""
    try:
        result: dict[str, Any] = work()
    except Failed as error:
        print(f"  {label}: FAILED\n    " + str(error).replace("\n", "\n    "), flush=True)
        return None
    print(f"  {label}: {json.dumps(result)}", flush=True)
    return result


def _median(result: dict[str, Any] | None, key: str = "wall_s") -> float | None:
    if not result or key not in result:
        return None
    return float(statistics.median(result[key]))


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:9.3f} s"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:8.3f} ms"


def _ratio(top: float | None, bottom: float | None) -> str:
    return "-" if top is None or bottom is None or bottom <= 0 else f"{top / bottom:6.2f}x"


def _mib(result: dict[str, Any] | None) -> str:
    return "-" if not result else f"{result['peak_rss_mib']:7.0f} MiB"


# --- workloads ---------------------------------------------------------------------------------


def training_sets(d: data.Data, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """(a): every tool's training set, its result Parquet kept in ``work`` for (d)."""
    common = ("--features", d.features, "--entities", d.entities, "--repeat", args.repeat)
    results: dict[str, Any] = {"paths": {}}
    py = sys.executable

    def tool(name: str, python: Path | str, script: str, *extra: Any) -> None:
        out = work / f"{name}.parquet"
        result = attempt(
            name, lambda: run(python, script, "historical", *common, "--out", out, *extra)
        )
        results[name] = result
        if result is not None:
            results["paths"][name] = out

    tool("floor", py, "_features_floor.py")
    tool("feast-duckdb", feast_python(), "_features_feast.py", "--repo", work / "repo-duckdb")
    if d.size.name == "10m":
        print("  feast-file: skipped at 10m (the anchor's run passed 16 GiB RSS and was killed)")
    else:
        tool(
            "feast-file",
            feast_python(),
            "_features_feast.py",
            "--repo",
            work / "repo-file",
            "--offline",
            "file",
        )
    tool("loopwright", py, "_features_loopwright.py", "--home", work / "lw-historical" / "home")
    return results


def materializing(d: data.Data, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """(b): every tool loads the newest row per entity into its SQLite online store."""
    common = ("materialize", "--features", d.features, "--repeat", args.repeat)
    return {
        "floor": attempt(
            "floor",
            lambda: run(sys.executable, "_features_floor.py", *common, "--db", work / "floor.db"),
        ),
        "feast": attempt(
            "feast (duckdb offline, sqlite online)",
            lambda: run(feast_python(), "_features_feast.py", *common, "--repo", work / "repo-m"),
        ),
        "loopwright": attempt(
            "loopwright (sqlite online)",
            lambda: run(
                sys.executable,
                "_features_loopwright.py",
                *common,
                "--home",
                work / "lw-materialize" / "home",
            ),
        ),
    }


def lookups(d: data.Data, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """(c): online lookups in process and over HTTP."""
    calls = ("--calls", args.calls, "--batch", 1, 100)
    lw = ("--features", d.features, *calls)
    results: dict[str, Any] = {}
    floor_db = work / "floor-online.db"
    feast_repo = work / "repo-online"

    def floor() -> dict[str, Any]:
        run(sys.executable, "_features_floor.py", "materialize", "--features", d.features,
            "--db", floor_db)  # fmt: skip
        return run(sys.executable, "_features_floor.py", "online", "--db", floor_db, *calls)

    def feast(workload: str) -> dict[str, Any]:
        if not (feast_repo / "online.db").exists():
            run(feast_python(), "_features_feast.py", "materialize", "--features", d.features,
                "--repo", feast_repo)  # fmt: skip
        return run(feast_python(), "_features_feast.py", workload, "--repo", feast_repo, *calls)

    def loopwright(workload: str, name: str, store: str | None) -> dict[str, Any]:
        extra = ("--online-store", store) if store else ()
        home = work / f"lw-{name}" / "home"
        return run(sys.executable, "_features_loopwright.py", workload, "--home", home, *lw, *extra)

    results["floor"] = attempt("floor (sqlite3)", floor)
    results["feast"] = attempt("feast SDK (sqlite)", lambda: feast("online"))
    results["loopwright"] = attempt(
        "loopwright embedded (sqlite)", lambda: loopwright("online", "online", None)
    )
    if args.redis:
        # Keys of its own on a shared server, removed after (the child deletes its prefix).
        joiner = "&" if "?" in args.redis else "?"
        url = f"{args.redis}{joiner}prefix=lw-features-bench-{os.getpid()}:"
        results["loopwright-redis"] = attempt(
            "loopwright embedded (redis)", lambda: loopwright("online", "redis", url)
        )
    results["feast-http"] = attempt("feast serve", lambda: feast("http"))
    results["loopwright-http"] = attempt(
        "loopwright server", lambda: loopwright("http", "http", None)
    )
    return results


def correctness(root: Path, args: argparse.Namespace, work: Path, a: dict[str, Any] | None) -> Any:
    """(d): the check data through every tool, then (a)'s results, against the oracle."""
    check_data = data.ensure(root, "check")
    quick = argparse.Namespace(**{**vars(args), "repeat": 1})
    folder = work / "check"
    folder.mkdir()
    print(f"  check data: {check_data.size}", flush=True)
    ran = training_sets(check_data, quick, folder)
    verdicts = checking.check(
        ran["paths"],
        features=check_data.features,
        entities=check_data.entities,
        ttl=data.TTL_SECONDS,
        oracle_rows=check_data.size.entity_rows,
        reference="feast-duckdb",
    )
    sized: list[checking.Verdict] = []
    if a is not None and a["paths"] and args.size != "check":
        d = data.ensure(root, args.size)
        sized = checking.check(
            a["paths"],
            features=d.features,
            entities=d.entities,
            ttl=data.TTL_SECONDS,
            oracle_rows=ORACLE_SAMPLE,
            reference="feast-duckdb",
        )
    return verdicts, sized


# --- report ------------------------------------------------------------------------------------


def print_training(a: dict[str, Any]) -> None:
    floor, ours = a.get("floor"), a.get("loopwright")
    print(f"\n(a) training set{'':24}{'wall':>11} {'cpu':>11} {'peak RSS':>11} {'rows':>10}"
          f"  {'vs loopwright':>13}")  # fmt: skip
    for name in ("loopwright", "feast-duckdb", "feast-file", "floor"):
        result = a.get(name)
        if name not in a:
            continue
        rows = "-" if not result else f"{result['rows_out']:,}"
        ratio = _ratio(_median(result), _median(ours)) if name != "loopwright" else ""
        print(
            f"    {name:36}{_s(_median(result)):>11} {_s(_median(result, 'cpu_s')):>11} "
            f"{_mib(result):>11} {rows:>10}  {ratio:>13}"
        )
    print(f"    loopwright / floor: {_ratio(_median(ours), _median(floor))} (target <= 1.2x); "
          f"feast-duckdb / loopwright: {_ratio(_median(a.get('feast-duckdb')), _median(ours))} "
          "(target >= 3x)")  # fmt: skip


def print_materialize(b: dict[str, Any]) -> None:
    ours = b.get("loopwright")
    print(
        f"\n(b) materialize{'':25}{'wall':>11} {'cpu':>11} {'peak RSS':>11}  {'vs loopwright':>13}"
    )
    for name in ("loopwright", "feast", "floor"):
        result = b.get(name)
        ratio = _ratio(_median(result), _median(ours)) if name != "loopwright" else ""
        print(
            f"    {name:36}{_s(_median(result)):>11} {_s(_median(result, 'cpu_s')):>11} "
            f"{_mib(result):>11}  {ratio:>13}"
        )
    print(
        f"    feast / loopwright: {_ratio(_median(b.get('feast')), _median(ours))} (target >= 3x)"
    )


def print_online(c: dict[str, Any]) -> None:
    print(f"\n(c) online lookups{'':22}{'1: median':>11} {'p99':>11}  {'100: median':>11} "
          f"{'p99':>11}")  # fmt: skip
    for name in ("loopwright", "loopwright-redis", "feast", "floor", "loopwright-http",
                 "feast-http"):  # fmt: skip
        if name not in c:
            continue
        result = c[name] or {}
        one, hundred = result.get("1", {}), result.get("100", {})
        print(
            f"    {name:36}{_ms(one.get('median_ms')):>11} {_ms(one.get('p99_ms')):>11}  "
            f"{_ms(hundred.get('median_ms')):>11} {_ms(hundred.get('p99_ms')):>11}"
        )
    for ours, anchor in (("loopwright", "feast"), ("loopwright-http", "feast-http")):
        for batch in ("1", "100"):
            mine = ((c.get(ours) or {}).get(batch) or {}).get("median_ms")
            theirs = ((c.get(anchor) or {}).get(batch) or {}).get("median_ms")
            floor = ((c.get("floor") or {}).get(batch) or {}).get("median_ms")
            line = f"    {anchor} / {ours}, {batch:>3} entities: {_ratio(theirs, mine)}"
            if ours == "loopwright":
                line += f"   loopwright / floor: {_ratio(mine, floor)}"
            print(line)


def print_correctness(verdicts: list[checking.Verdict], sized: list[checking.Verdict]) -> None:
    print("\n(d) correctness on the check data (TTL, late rows, created ties; every entity row)")
    for verdict in verdicts:
        print(f"    {verdict.line()}")
    if sized:
        print(f"    (a)'s results (oracle on a {ORACLE_SAMPLE:,}-row sample; Feast-duckdb on all)")
        for verdict in sized:
            print(f"    {verdict.line()}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", choices=tuple(data.SIZES), default="small")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default=",".join(WORKLOADS))
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--redis", default=os.environ.get("LOOPWRIGHT_TEST_REDIS_URL"))
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "lw-features-bench"
    )
    parser.add_argument("--quick", action="store_true", help="small size, 1 run, 100 calls")
    parser.add_argument("--max-rss-gib", type=float, default=16.0, help="kill a process past it")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    LIMITS["rss_gib"] = args.max_rss_gib
    chosen = [w for w in args.only.split(",") if w]
    for workload in chosen:
        if workload not in WORKLOADS:
            parser.error(f"--only: unknown workload {workload!r} (known: {', '.join(WORKLOADS)})")
    if args.quick:
        args.size, args.repeat, args.calls = "small", 1, 100
    print(f"load average at start: {load_average()}  (cores: {os.cpu_count()})", flush=True)
    print(versions(), flush=True)
    d = data.ensure(args.data, args.size)
    print(f"data: {d.folder} {d.size}", flush=True)
    report: dict[str, Any] = {"size": args.size, "repeat": args.repeat}
    with tempfile.TemporaryDirectory(prefix="lw-features-bench-") as tmp:
        work = Path(tmp)
        if "a" in chosen:
            print("(a) training set", flush=True)
            report["a"] = training_sets(d, args, work)
        if "b" in chosen:
            print("(b) materialize", flush=True)
            report["b"] = materializing(d, args, work)
        if "c" in chosen:
            print("(c) online lookups", flush=True)
            report["c"] = lookups(d, args, work)
        if "d" in chosen:
            print("(d) correctness", flush=True)
            verdicts, sized = correctness(args.data, args, work, report.get("a"))
            report["d"] = {"check": checking.summary(verdicts), "sized": checking.summary(sized)}
        if "a" in report:
            print_training(report["a"])
            report["a"]["paths"] = {k: str(v) for k, v in report["a"]["paths"].items()}
        if "b" in report:
            print_materialize(report["b"])
        if "c" in report:
            print_online(report["c"])
        if "d" in report:
            print_correctness(verdicts, sized)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average at end: {load_average()}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
