"""Monitoring benchmark: a drift pass over 1M rows x 25 columns, Loopwright against Evidently 0.7
and a plain scipy baseline; and (``--calibration``) the calibration table of every drift test.

    .venv/bin/python benchmarks/monitoring.py [--rows 1000000] [--repeat 3] [--skip-evidently]
                                              [--only loopwright,scipy,evidently] [--json F]
    .venv/bin/python benchmarks/monitoring.py --calibration [--pairs 500] [--sizes 1000,10000]
                                              [--multivariate-power-pairs 100] [--jobs 2]

The data (_monitoring_data): 20 numeric and 5 categorical columns, a reference and a current
frame from the same seeded generator with five known shifts (num_00 +0.5 sd, num_01 spread x1.3,
cat_0 reversed: real; num_02 +0.03 sd, cat_1 +2 pp: negligible), written once to Parquet under
``--cache``; every contender reads the same two files, each in its own process:

- ``loopwright``: ``ReferenceSketch.build(reference)`` once (its own process, timed as "build"),
  stored with ``to_bytes``; then the drift pass in a fresh process that reads only the sketch
  and the current window: ``compare(sketch, current)`` with the default tests;
- ``scipy``: per column ``ks_2samp`` and the 2 x k ``chi2_contingency`` (_monitoring_scipy);
- ``evidently``: ``Report([DataDriftPreset()]).run(current, reference)`` in
  benchmarks/.venvs/evidently (evidently>=0.7,<0.8 with pandas<3, built on first use).

Wall time is the median of ``--repeat`` runs inside each process after a warm-up on the first
rows (loading the data is timed apart). Memory, from /proc: "peak" is the process's peak RSS
(interpreter, imports and data included, as /usr/bin/time would show); "pass" is the peak during
the timed runs above the RSS right after the imports, i.e. the data the process holds plus the
pass's working memory; "work" is the peak above the RSS once the data is loaded, the pass's own
memory. The memory target (peak <= 1.5x the current window plus the stored reference) is checked
as (current table's Arrow size + sketch bytes + work) / (current + sketch): the Parquet reader's
buffers are the file format's cost, not the drift pass's. The load average is printed at start
and end: a busy machine slows every figure; the ratios (same data, same machine) are the robust
part.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _monitoring_data as data

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks"
EVIDENTLY_VENV = HERE / ".venvs" / "evidently"
# pandas 3 removed a function evidently 0.7 imports (drift.md section 4, "Packaging").
EVIDENTLY_REQUIREMENTS = ("evidently>=0.7,<0.8", "pandas<3", "pyarrow")
CONTENDERS = ("loopwright", "scipy", "evidently")
# Issue 13's targets, for the full size (1M rows x 25 columns).
TARGET_SECONDS = 5.0
TARGET_VS_EVIDENTLY = 40.0
TARGET_VS_SCIPY = 2.0
TARGET_MEMORY = 1.5
MIB = 1024 * 1024


class Failed(Exception):
    """A contender's process failed; the message holds the end of its output."""


def evidently_python() -> Path:
    return EVIDENTLY_VENV / "bin" / "python"


def ensure_evidently() -> str:
    """Evidently's venv, created when missing; returns 'evidently X, pandas Y'."""
    python = evidently_python()
    if not python.exists():
        print("creating benchmarks/.venvs/evidently (pip install, a few minutes)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
        install = [str(python), "-m", "pip", "install", "--quiet", *EVIDENTLY_REQUIREMENTS]
        subprocess.run(install, check=True)
    probe = (
        "import importlib.metadata as m; "
        "print(', '.join(f'{p} {m.version(p)}' for p in ('evidently', 'pandas', 'scipy')))"
    )
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def versions() -> str:
    """This environment's numpy, scipy and pyarrow (the two in-project contenders use them)."""
    import importlib.metadata as metadata

    return ", ".join(f"{p} {metadata.version(p)}" for p in ("numpy", "scipy", "pyarrow"))


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def run_child(argv: list[str], out: Path, timeout: float | None) -> dict[str, Any]:
    """Run one contender process; its figures (the JSON it wrote to ``out``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPWRIGHT_", "VIRTUAL_ENV"))}
    env["PYTHONPATH"] = str(HERE)  # the contenders import _monitoring_child from here
    env["DO_NOT_TRACK"] = "1"  # Evidently's (and others') usage telemetry off
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        raise Failed(f"ran past {timeout:.0f} s") from None
    if done.returncode != 0 or not out.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise Failed(f"exit {done.returncode}: {' | '.join(tail)[:400]}")
    figures: dict[str, Any] = json.loads(out.read_text())
    return figures


def contender_argv(
    name: str, frames: data.Frames, work: Path, repeat: int
) -> list[tuple[str, list[str], Path]]:
    """The processes to run for ``name``: (label, argv, output file) each, in order."""
    common = ["--reference", str(frames.reference), "--current", str(frames.current)]
    common += ["--numeric", ",".join(frames.numeric)]
    common += ["--categorical", ",".join(frames.categorical), "--repeat", str(repeat)]

    def process(
        label: str, python: Path | str, script: str, *extra: str
    ) -> tuple[str, list[str], Path]:
        out = work / f"{label.replace(' ', '-')}.json"
        return label, [str(python), str(HERE / script), *common, *extra, "--out", str(out)], out

    if name == "loopwright":
        script, sketch = "_monitoring_loopwright.py", ("--sketch", str(work / "reference.sketch"))
        return [
            process("loopwright build", sys.executable, script, *sketch, "--mode", "build"),
            process("loopwright", sys.executable, script, *sketch, "--mode", "compare"),
        ]
    if name == "scipy":
        return [process("scipy", sys.executable, "_monitoring_scipy.py")]
    return [process("evidently", evidently_python(), "_monitoring_evidently.py")]


def median(figures: dict[str, Any] | None) -> float | None:
    if not figures or not figures.get("times_s"):
        return None
    return float(statistics.median(figures["times_s"]))


def pass_mib(figures: dict[str, Any] | None) -> float | None:
    """Peak during the timed runs above the RSS after imports: data held plus working memory."""
    if not figures or figures.get("run_peak_mib") is None:
        return None
    return float(figures["run_peak_mib"] - figures["rss_imports_mib"])


def work_mib(figures: dict[str, Any] | None) -> float | None:
    """Peak during the timed runs above the RSS once the data was loaded: the pass's own memory."""
    if not figures or figures.get("run_peak_mib") is None:
        return None
    return max(0.0, float(figures["run_peak_mib"] - figures["rss_loaded_mib"]))


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def describe_flags(flagged: list[str]) -> str:
    false = [c for c in flagged if c not in data.SHIFTS]
    missed = [c for c in data.EXPECTED if c not in flagged]
    negligible = [c for c in flagged if c in data.SHIFTS and c not in data.EXPECTED]
    notes = []
    if false:
        notes.append(f"{len(false)} false alarm{'s' * (len(false) > 1)}")
    if negligible:
        notes.append(f"negligible shift{'s' * (len(negligible) > 1)} flagged")
    if missed:
        notes.append(f"missed {', '.join(missed)}")
    return ", ".join(flagged) + (f"  [{'; '.join(notes)}]" if notes else "  [as expected]")


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def table(results: dict[str, dict[str, Any]], failures: dict[str, str]) -> None:
    print(
        f"\n{'contender':<17} {'median s':>9} {'runs s':<24} {'load s':>7} {'peak MiB':>9} "
        f"{'pass MiB':>9} {'held MiB':>9} {'work MiB':>9} {'data MiB':>9}"
    )
    for label, figures in results.items():
        runs = ", ".join(f"{t:.3g}" for t in figures["times_s"])
        held = figures["rss_loaded_mib"] - figures["rss_imports_mib"]
        print(
            f"{label:<17} {fmt(median(figures), '.3f'):>9} {runs:<24.24} "
            f"{fmt(figures.get('load_s'), '.2f'):>7} {fmt(figures['process_peak_mib'], '.0f'):>9} "
            f"{fmt(pass_mib(figures), '.0f'):>9} {held:>9.0f} {fmt(work_mib(figures), '.0f'):>9} "
            f"{fmt(figures.get('data_mib'), '.0f'):>9}"
        )
    for label, why in failures.items():
        print(f"{label:<17} failed: {why}")
    print(
        "peak: the process's peak RSS; pass: peak during the timed runs above the RSS after "
        "imports;\nheld: RSS after loading the data above the RSS after imports (what the Parquet "
        "reader keeps counts too);\nwork: pass - held, the pass's own memory; data: the tables' "
        "own size (Arrow; Evidently: pandas, deep)"
    )
    build = results.get("loopwright build")
    if build:
        print(f"loopwright's stored sketch: {build['sketch_bytes'] / 1024:.0f} KiB")


def flags(results: dict[str, dict[str, Any]]) -> None:
    print("\nflagged columns (real shifts: num_00, num_01, cat_0; negligible: num_02, cat_1)")
    for label, figures in results.items():
        if "flagged" in figures:
            print(f"  {label:<15} {describe_flags(figures['flagged'])}")
            print(f"  {'':<15} rule: {figures['rule']}")
    scipy = results.get("scipy")
    if scipy:
        bonferroni = 0.05 / len(scipy["columns"])
        kept = [c for c, v in scipy["columns"].items() if v["p_value"] < bonferroni]
        print(f"  {'scipy, Bonf.':<15} {describe_flags(kept)}")
        print(f"  {'':<15} rule: p < 0.05 / {len(scipy['columns'])} columns (Bonferroni)")


def ratios_and_targets(results: dict[str, dict[str, Any]], rows: int) -> None:
    ours = median(results.get("loopwright"))
    if ours is None:
        return
    print("\nratios (time: theirs / ours, > 1: ours faster; memory: ours / theirs, pass MiB)")
    for anchor in ("evidently", "scipy"):
        theirs = median(results.get(anchor))
        if theirs is None:
            continue
        mine, other = pass_mib(results["loopwright"]), pass_mib(results[anchor])
        memory = mine / other if mine is not None and other else None
        print(f"  vs {anchor:<10} time {theirs / ours:7.1f}x   memory {fmt(memory, '.2f')}")

    scope = "" if rows >= 1_000_000 else f": stated for 1M rows, this run has {rows:,}"
    print(f"\nissue 13 targets{scope}")
    print(
        f"  drift pass <= {TARGET_SECONDS:g} s: {ours:.3f} s -> {verdict(ours <= TARGET_SECONDS)}"
    )
    for anchor, goal in (("evidently", TARGET_VS_EVIDENTLY), ("scipy", TARGET_VS_SCIPY)):
        theirs = median(results.get(anchor))
        if theirs is None:
            print(f"  >= {goal:g}x {anchor}: {anchor} not measured")
        else:
            ratio = theirs / ours
            print(f"  >= {goal:g}x {anchor}: {ratio:.1f}x -> {verdict(ratio >= goal)}")
    drift = results["loopwright"]
    window = drift.get("data_mib", 0.0) + drift.get("sketch_bytes", 0) / MIB
    work = work_mib(drift)
    if work is not None and window:
        # The window and the sketch at their own size plus what the pass adds: the reader's
        # buffers (in "held") depend on the file format, not on the drift pass.
        used = window + work
        print(
            f"  peak <= {TARGET_MEMORY:g}x (current window + sketch = {window:.0f} MiB) + work "
            f"{work:.0f} MiB = {used / window:.2f}x -> {verdict(used <= TARGET_MEMORY * window)}"
        )


def benchmark(args: argparse.Namespace) -> None:
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown:
        raise SystemExit(f"unknown contenders {unknown}; choose from {', '.join(CONTENDERS)}")
    if args.skip_evidently and "evidently" in names:
        names.remove("evidently")
    evidently = ensure_evidently() if "evidently" in names else "skipped"
    start = time.perf_counter()
    frames = data.ensure(args.cache, args.rows, args.num_cols, args.cat_cols, args.seed)
    print(
        f"machine: {os.cpu_count()} cores, shared with other work, so figures are indicative\n"
        f"data: {args.rows:,} rows x ({len(frames.numeric)} numeric + {len(frames.categorical)} "
        f"categorical) per frame, seed {args.seed}, {frames.reference.parent} "
        f"(ready in {time.perf_counter() - start:.1f} s)\n"
        f"loopwright and scipy: {versions()}\nevidently: {evidently}; --repeat {args.repeat}\n"
        f"load average at start: {load_average()}",
        flush=True,
    )
    results: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="lw-bench-monitoring-") as tmp:
        work = Path(tmp)
        for name in names:
            repeat = (
                args.evidently_repeat
                if name == "evidently" and args.evidently_repeat
                else args.repeat
            )
            for label, argv, out in contender_argv(name, frames, work, repeat):
                print(f"  running {label}", flush=True)
                try:
                    results[label] = run_child(argv, out, args.timeout)
                except Failed as failure:
                    failures[label] = str(failure)
                    break  # the compare step needs the build step's sketch
    table(results, failures)
    flags(results)
    ratios_and_targets(results, args.rows)
    print(f"load average at end: {load_average()}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "failures": failures}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per frame")
    parser.add_argument("--num-cols", type=int, default=20)
    parser.add_argument("--cat-cols", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per contender")
    parser.add_argument(
        "--evidently-repeat", type=int, help="timed Evidently runs (default: --repeat)"
    )
    parser.add_argument("--only", default=",".join(CONTENDERS), help=", ".join(CONTENDERS))
    parser.add_argument(
        "--skip-evidently", action="store_true", help="no Evidently (no venv needed)"
    )
    parser.add_argument(
        "--timeout", type=float, help="seconds per contender process (default: none)"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=HERE / "results" / "monitoring-data",
        help="the Parquet files' folder",
    )
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--calibration", action="store_true", help="the calibration table instead")
    parser.add_argument("--pairs", type=int, default=500, help="--calibration: null pairs per size")
    parser.add_argument("--sizes", default="1000,10000", help="--calibration: rows per side")
    parser.add_argument(
        "--multivariate-power-pairs",
        type=int,
        default=100,
        help="--calibration: shifted pairs for the multivariate tests' power",
    )
    parser.add_argument("--jobs", type=int, default=1, help="--calibration: processes")
    parser.add_argument("--alpha", type=float, default=0.05, help="--calibration: the tests' alpha")
    args = parser.parse_args()
    if args.calibration:
        import _monitoring_calibration as calibration

        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        calibration.run(
            multivariate_power_pairs=args.multivariate_power_pairs,
            jobs=args.jobs,
            pairs=args.pairs,
            sizes=sizes,
            alpha=args.alpha,
            seed=args.seed,
            json_out=args.json,
        )
        return
    benchmark(args)


if __name__ == "__main__":
    main()
