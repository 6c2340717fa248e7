"""Foundation benchmark: start-up, fresh store open, blob throughput.

    .venv/bin/python benchmarks/store.py [--size-mib 512] [--repeat 5]

Anchors: MLflow for import time and a fresh SQLite store (MLflow runs in its own virtual
environment, benchmarks/.venvs/mlflow, made with `python3 -m venv benchmarks/.venvs/mlflow &&
benchmarks/.venvs/mlflow/bin/pip install mlflow`; without it those rows say so), and the machine's
raw BLAKE3 hashing and file copy speed as the limit for blob puts and verified reads.
Prints medians; this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import blake3

ROOT = Path(__file__).resolve().parents[1]
MLFLOW_PYTHON = ROOT / "benchmarks" / ".venvs" / "mlflow" / "bin" / "python"
LOOPWRIGHT_BIN = Path(sys.executable).parent / "loopwright"


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run_quiet(command: list[str], **kwargs: object) -> None:
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs
    )  # type: ignore[call-overload]


def row(label: str, ours: float, anchor: float | None, anchor_name: str, unit: str = "s") -> None:
    if anchor is None:
        print(f"{label:<44} loopwright {ours:8.3f} {unit:<6} {anchor_name}: not installed")
    else:
        print(
            f"{label:<44} loopwright {ours:8.3f} {unit:<6} {anchor_name} {anchor:8.3f} {unit:<6}"
            f" ratio {anchor / ours if unit == 's' else ours / anchor:6.2f}x"
        )


def fresh_store_loopwright(tmp: Path) -> Callable[[], object]:
    counter = iter(range(10**6))
    code = "import loopwright as lw, sys; lw.connect(home=sys.argv[1]).close()"
    return lambda: run_quiet([sys.executable, "-c", code, str(tmp / f"lw{next(counter)}")])


def fresh_store_mlflow(tmp: Path) -> Callable[[], object]:
    counter = iter(range(10**6))
    code = (
        "import mlflow, sys; c = mlflow.MlflowClient(tracking_uri='sqlite:///' + sys.argv[1]);"
        " c.search_experiments()"
    )
    return lambda: run_quiet([str(MLFLOW_PYTHON), "-c", code, str(tmp / f"ml{next(counter)}.db")])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size-mib", type=int, default=512, help="size of the file for blob figures"
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    has_mlflow = MLFLOW_PYTHON.exists()

    with tempfile.TemporaryDirectory(dir=ROOT / "benchmarks") as tmp_name:
        tmp = Path(tmp_name)
        print(f"medians of {args.repeat} runs; {os.cpu_count()} cores\n")

        ours = median_seconds(
            lambda: run_quiet([sys.executable, "-c", "import loopwright"]), args.repeat
        )
        theirs = (
            median_seconds(
                lambda: run_quiet([str(MLFLOW_PYTHON), "-c", "import mlflow"]), args.repeat
            )
            if has_mlflow
            else None
        )
        row("cold import", ours, theirs, "mlflow")

        ours = median_seconds(lambda: run_quiet([str(LOOPWRIGHT_BIN), "--help"]), args.repeat)
        theirs = (
            median_seconds(
                lambda: run_quiet([str(MLFLOW_PYTHON.parent / "mlflow"), "--help"]), args.repeat
            )
            if has_mlflow
            else None
        )
        row("CLI --help", ours, theirs, "mlflow")

        ours = median_seconds(fresh_store_loopwright(tmp), args.repeat)
        theirs = median_seconds(fresh_store_mlflow(tmp), args.repeat) if has_mlflow else None
        row("fresh SQLite store (process, incl. import)", ours, theirs, "mlflow")

        from loopwright.config import resolve_settings
        from loopwright.store.home import open_store

        counter = iter(range(10**6))
        in_process = median_seconds(
            lambda: open_store(resolve_settings(home=tmp / f"in{next(counter)}")).close(),
            args.repeat,
        )
        print(f"{'fresh SQLite store (in process)':<44} loopwright {in_process:8.3f} s")
        reopen = median_seconds(
            lambda: open_store(resolve_settings(home=tmp / "in0")).close(), args.repeat
        )
        print(f"{'reopen a current store (in process)':<44} loopwright {reopen:8.3f} s\n")

        size = args.size_mib * 1024 * 1024
        data_file = tmp / "data.bin"
        with data_file.open("wb") as handle:
            for _ in range(args.size_mib):
                handle.write(os.urandom(1024 * 1024))

        def raw_hash() -> None:
            hasher = blake3.blake3()
            with data_file.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    hasher.update(chunk)

        raw = median_seconds(raw_hash, args.repeat)
        copy = median_seconds(lambda: shutil.copyfile(data_file, tmp / "copy.bin"), args.repeat)
        store = open_store(resolve_settings(home=tmp / "blobs-home"))

        def put() -> None:
            info = store.blobs.put_file(data_file)
            store.blobs.delete(info.hash)

        put_s = median_seconds(put, args.repeat)
        info = store.blobs.put_file(data_file)
        get_s = median_seconds(
            lambda: store.blobs.get_file(info.hash, tmp / "out.bin"), args.repeat
        )
        mib = args.size_mib
        print(
            f"{mib} MiB file: raw BLAKE3 {mib / raw:7.0f} MiB/s, raw copy {mib / copy:7.0f} MiB/s"
        )
        print(
            f"{'blob put (hash + copy + fsync)':<44} {mib / put_s:7.0f} MiB/s  "
            f"{put_s / (raw + copy):5.2f}x the hash+copy time"
        )
        print(
            f"{'blob get (verified copy)':<44} {mib / get_s:7.0f} MiB/s  "
            f"{get_s / (raw + copy):5.2f}x the hash+copy time"
        )
        assert size == info.size
        store.close()


if __name__ == "__main__":
    main()
