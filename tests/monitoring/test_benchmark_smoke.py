"""benchmarks/monitoring.py at a tiny size, so the benchmark cannot rot unnoticed.

Runs the real script (Loopwright and scipy contenders in their own processes; Evidently skipped:
its venv is built only by the benchmark itself) and the calibration table on a few pairs, and
checks the generator makes the shifts it claims.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPT = BENCHMARKS / "monitoring.py"


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


data = _module("_monitoring_data")


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_benchmark_runs_and_finds_the_real_shifts(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    done = _run(
        "--rows", "3000", "--skip-evidently", "--repeat", "1",
        "--cache", str(tmp_path / "cache"), "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert figures["failures"] == {}
    results = figures["results"]
    assert set(results) == {"loopwright build", "loopwright", "scipy"}
    for label, got in results.items():
        assert got["times_s"] and all(t > 0 for t in got["times_s"]), label
        assert got["process_peak_mib"] > 0, label
    assert results["loopwright build"]["sketch_bytes"] > 0
    for label in ("loopwright", "scipy"):
        flagged = set(results[label]["flagged"])
        assert set(data.EXPECTED) <= flagged, (label, flagged)
    # Loopwright's corrected, effect-size-gated default flags no unshifted column (uncorrected
    # scipy p-values do, at this seed: about one false alarm per 20 null columns is their norm).
    assert set(results["loopwright"]["flagged"]) <= set(data.SHIFTS)
    assert "issue 13 targets" in done.stdout
    assert "load average at end" in done.stdout


def test_calibration_covers_every_registered_test(tmp_path: Path) -> None:
    from loopwright.monitoring.stats import TESTS

    out = tmp_path / "calibration.json"
    done = _run(
        "--calibration", "--pairs", "8", "--sizes", "300",
        "--multivariate-power-pairs", "1", "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cells = json.loads(out.read_text())["cells"]
    assert {c["test"] for c in cells} == set(TESTS)
    chi2_null = next(c for c in cells if c["test"] == "chi2" and c["data"] == "null_cat")
    assert chi2_null["pairs"] == 8
    assert "false alarms on null pairs" in done.stdout
    assert "power on fixed shifts" in done.stdout


def test_the_generator_makes_the_shifts_it_states(tmp_path: Path) -> None:
    frames = data.ensure(tmp_path, 20_000)
    ref, cur = pq.read_table(frames.reference), pq.read_table(frames.current)
    assert ref.num_rows == cur.num_rows == 20_000
    assert ref.schema == cur.schema

    def mean(table: pa.Table, column: str) -> float:
        return float(pc.mean(table.column(column)).as_py())

    def sd(table: pa.Table, column: str) -> float:
        return float(pc.stddev(table.column(column)).as_py())

    shift = (mean(cur, "num_00") - mean(ref, "num_00")) / sd(ref, "num_00")
    assert shift == pytest.approx(0.5, abs=0.05)
    assert sd(cur, "num_01") / sd(ref, "num_01") == pytest.approx(1.3, abs=0.05)
    assert mean(cur, "num_01") == pytest.approx(mean(ref, "num_01"), abs=0.03)
    tiny = (mean(cur, "num_02") - mean(ref, "num_02")) / sd(ref, "num_02")
    assert tiny == pytest.approx(0.03, abs=0.03)
    unshifted = (mean(cur, "num_05") - mean(ref, "num_05")) / sd(ref, "num_05")
    assert abs(unshifted) < 0.05

    def shares(table: pa.Table, column: str) -> dict[str, float]:
        counts = pc.value_counts(table.column(column))
        total = sum(counts.field("counts").to_pylist())
        return {
            v: n / total
            for v, n in zip(
                counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
            )
        }

    ref0, cur0 = shares(ref, "cat_0"), shares(cur, "cat_0")
    assert max(ref0, key=ref0.__getitem__) == min(cur0, key=cur0.__getitem__)  # order reversed
    assert shares(cur, "cat_1")["c1_02"] - shares(ref, "cat_1")["c1_02"] == pytest.approx(
        0.02, abs=0.01
    )


def test_the_cache_is_written_once_and_reused(tmp_path: Path) -> None:
    first = data.ensure(tmp_path, 500, num_cols=3, cat_cols=2, seed=7)
    stamp = first.current.stat().st_mtime_ns
    again = data.ensure(tmp_path, 500, num_cols=3, cat_cols=2, seed=7)
    assert again == first
    assert again.current.stat().st_mtime_ns == stamp
    other = data.ensure(tmp_path, 500, num_cols=3, cat_cols=2, seed=8)
    assert other.current != first.current  # the seed is part of the cache's name
    assert not list(tmp_path.rglob(".*.parquet.*"))  # no half-written file left


def test_too_few_columns_for_the_shifts_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--num-cols"):
        data.ensure(tmp_path, 100, num_cols=2, cat_cols=5)


def test_an_unknown_contender_is_refused_naming_the_valid_ones(tmp_path: Path) -> None:
    done = _run("--rows", "100", "--only", "pandas", "--cache", str(tmp_path))
    assert done.returncode != 0
    assert "unknown contenders ['pandas']" in done.stderr
    assert "loopwright, scipy, evidently" in done.stderr


def test_a_failing_contender_is_reported_not_raised(tmp_path: Path) -> None:
    frames = data.ensure(tmp_path, 200)
    frames.current.write_bytes(b"not parquet")  # the contenders cannot read it
    out = tmp_path / "figures.json"
    done = _run(
        "--rows", "200", "--skip-evidently", "--only", "scipy", "--repeat", "1",
        "--cache", str(tmp_path), "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    failures = json.loads(out.read_text())["failures"]
    assert set(failures) == {"scipy"}
    assert "exit 1" in failures["scipy"]
    assert "scipy" in done.stdout and "failed:" in done.stdout
