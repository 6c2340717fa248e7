"""Two versions of the server, side by side: the hot requests over HTTP, old against new.

    .venv/bin/python benchmarks/server_ab.py --old REV [--db sqlite|postgresql] [--requests 400]
                                             [--auth off|on]

``REV`` (a commit, a tag, ``HEAD~1``) is checked out into a temporary git worktree; two
``loopwright server`` processes, one running that tree's code and one this tree's, serve the same
fresh store (PostgreSQL: a scratch database on ``--pg-uri``, default ``$LOOPWRIGHT_TEST_PG_URI``).
One ``httpx.Client`` per server sends the hot requests of ``server_profile.py`` (MLflow's
log-metric, runs/create, runs/get, runs/update and the native equivalents) to both, in turn, 25
of a kind at a time, until each was sent ``--requests`` times; the table shows the medians and the
difference (new minus old).

Why side by side: this machine is shared, and its speed drifts by more than a change is worth
between two runs taken minutes apart (figures of one request moved by ±0.3 ms run to run on
PostgreSQL). Two servers alive together, requested in turn, see the same drift.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import server_profile as sp  # noqa: E402  (run as a script)

NAMES = (
    "mlflow log-metric",
    "mlflow runs/create",
    "mlflow runs/get",
    "mlflow runs/update",
    "native runs/{id}/metrics",
    "native POST runs",
    "native GET runs/{id}",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="the git revision to compare against")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--auth", choices=("off", "on"), default="off")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--pg-uri", default=os.environ.get("LOOPWRIGHT_TEST_PG_URI", ""))
    args = parser.parse_args()
    import httpx

    print(f"load average at start: {sp._load()} ({os.cpu_count()} CPUs)")
    with contextlib.ExitStack() as stack:
        tree = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lw-ab-"))) / "old"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(tree), args.old], cwd=ROOT, check=True
        )
        stack.callback(
            subprocess.run, ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT
        )
        config = sp.Config(args.db, args.auth == "on")
        env, token = stack.enter_context(sp.store_env(config, args.pg_uri))
        senders: dict[str, Callable[[], None]] = {}
        for tag, source in (("old", tree / "src"), ("new", ROOT / "src")):
            port = sp._free_port()
            command = [str(sp.LOOPWRIGHT_CLI), "server", "--port", str(port)]
            url = stack.enter_context(sp.serving(command, {**env, "PYTHONPATH": str(source)}, port))
            client = stack.enter_context(httpx.Client(base_url=url, headers=sp._headers(token)))
            found = sp.http_senders(client, f"{tag} ")
            senders.update({f"{tag} {name}": found[f"{tag} {name}"] for name in NAMES})
        medians = sp._interleaved_ms(senders, args.requests)
    print(f"{args.db}, auth {args.auth}; old = {args.old}, new = this tree; ms over HTTP")
    print(f"{'request':<26}{'old':>8}{'new':>8}{'new-old':>9}")
    for name in NAMES:
        old, new = medians[f"old {name}"], medians[f"new {name}"]
        print(f"{name:<26}{old:>8.3f}{new:>8.3f}{new - old:>+9.3f}")
    print(f"load average at end: {sp._load()}")


if __name__ == "__main__":
    main()
