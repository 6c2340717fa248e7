"""Data-versioning benchmark: Loopwright against DVC, through each tool's command line.

    .venv/bin/python benchmarks/data.py [--big-gib 2] [--small 20000] [--repeat 3]
                                        [--case big|small] [--link reflink,copy]

DVC runs from its own virtual environment (make it once with `python3 -m venv
benchmarks/.venvs/dvc && benchmarks/.venvs/dvc/bin/pip install dvc`); without it the DVC
column says so. Two workloads, each in a fresh folder: one large random file, and a folder of
many 4 KiB files. For each: first add, re-add with nothing changed, status, and checkout after
deleting the workspace copy. The limit is the machine's raw BLAKE3 time over the same bytes.
Medians of --repeat runs. --link sets how both tools put files into their cache (Loopwright's
`data add --link`, DVC's `cache.type`): the default, reflink,copy, copies where the filesystem
has no reflinks (ext4); hardlink links instead (files under 64 KiB are packed by Loopwright
whatever the mode). Loopwright's checkout always writes copies.
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

from blake3 import blake3

ROOT = Path(__file__).resolve().parents[1]
DVC = ROOT / "benchmarks" / ".venvs" / "dvc" / "bin" / "dvc"
LOOPWRIGHT = Path(sys.executable).parent / "loopwright"
STEPS = ("add", "re-add", "status", "checkout")


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1) or "rror" in done.stderr.split("\n")[0]:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def make_big(folder: Path, gib: float) -> Path:
    path = folder / "big.bin"
    chunk = os.urandom(64 << 20)
    with path.open("wb") as handle:
        for _ in range(int(gib * 16)):
            handle.write(chunk[:-1] + os.urandom(1))  # distinct chunks, cheap to make
    return path


def make_small(folder: Path, count: int) -> Path:
    root = folder / "small"
    for i in range(count):
        sub = root / f"d{i % 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.bin").write_bytes(os.urandom(4096))
    return root


def raw_hash(path: Path) -> float:
    started = time.perf_counter()
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        hasher = blake3()
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                hasher.update(chunk)
    return time.perf_counter() - started


def loopwright_steps(work: Path, data: Path, link: str) -> dict[str, float]:
    env = {**os.environ, "LOOPWRIGHT_HOME": str(work / ".loopwright")}
    name, pointer = data.name, f"{data.name}.lw"
    cli = [str(LOOPWRIGHT), "data"]
    out = {
        "add": timed([*cli, "add", name, name, "--link", link], work, env),
        "re-add": timed([*cli, "add", name, name, "--link", link], work, env),
        "status": timed([*cli, "status", pointer], work, env),
    }
    _remove(data)
    out["checkout"] = timed([*cli, "checkout", pointer], work, env)
    return out


def dvc_steps(work: Path, data: Path, link: str) -> dict[str, float]:
    timed([str(DVC), "init", "--no-scm", "-q"], work)
    timed([str(DVC), "config", "core.analytics", "false"], work)
    timed([str(DVC), "config", "cache.type", link], work)
    name = data.name
    out = {
        "add": timed([str(DVC), "add", "-q", name], work),
        "re-add": timed([str(DVC), "add", "-q", name], work),
        "status": timed([str(DVC), "status", "-q"], work),
    }
    _remove(data)
    out["checkout"] = timed([str(DVC), "checkout", "-q"], work)
    return out


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def run(label: str, make: Callable[[Path], Path], repeat: int, link: str) -> None:
    ours: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    limits: list[float] = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(dir=ROOT / "benchmarks") as tmp:
            source = make(Path(tmp))
            limits.append(raw_hash(source))
            tools = (("lw", loopwright_steps, ours), ("dvc", dvc_steps, theirs))
            for tool, steps, results in tools:
                if tool == "dvc" and not DVC.exists():
                    continue
                work = Path(tmp) / tool
                work.mkdir()
                data = work / source.name
                if source.is_dir():
                    shutil.copytree(source, data)
                else:
                    shutil.copyfile(source, data)
                results.append(steps(work, data, link))
    limit = statistics.median(limits)
    print(f"\n{label}: raw BLAKE3 of the same bytes {limit:.3f} s (the limit for add)")
    for step in STEPS:
        lw = statistics.median(r[step] for r in ours)
        line = f"  {step:<9} loopwright {lw:8.3f} s"
        if theirs:
            dvc = statistics.median(r[step] for r in theirs)
            line += f"   dvc {dvc:8.3f} s   ratio {dvc / lw:6.1f}x"
        else:
            line += "   dvc: not installed"
        if step == "add":
            line += f"   ({lw / limit:.2f}x the hashing time)"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--big-gib", type=float, default=2.0)
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--case", choices=("big", "small"), action="append", help="run only this workload"
    )
    parser.add_argument("--link", default="reflink,copy", help="reflink,copy / hardlink / copy")
    args = parser.parse_args()
    cases = args.case or ["big", "small"]
    print(
        f"medians of {args.repeat}; ratio > 1: Loopwright is faster; times include CLI start; "
        f"link modes {args.link}; load average {os.getloadavg()[0]:.1f}"
    )
    if "big" in cases:
        big = f"one {args.big_gib:g} GiB file"
        run(big, lambda d: make_big(d, args.big_gib), args.repeat, args.link)
    if "small" in cases:
        small = f"{args.small:,} files of 4 KiB"
        run(small, lambda d: make_small(d, args.small), args.repeat, args.link)


if __name__ == "__main__":
    main()
