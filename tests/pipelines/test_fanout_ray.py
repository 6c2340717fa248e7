"""A pipeline whose map runs on a real local Ray (the session's Ray, started once)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _pipeline_project import Project

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))  # the session's Ray fixture

from _ray_cluster import ray_local  # noqa: F401  (the session fixture, used by name)

from loopwright.client import Client
from loopwright.pipelines import load_result

pytestmark = pytest.mark.usefixtures("ray_local")

FLOW = """
import os
import loopwright as lw

@lw.step
def square(x: int) -> dict:
    lw.log_metric("x", x)
    return {"square": x * x, "pid": os.getpid()}

@lw.step
def total(parts: list) -> int:
    return sum(p["square"] for p in parts)

@lw.pipeline
def fan(n: int = 5) -> int:
    return total(square.map(range(n)))
"""


def test_a_map_on_ray_runs_in_ray_workers_and_logs_to_each_step_run(
    client: Client, project: Project
) -> None:
    mod = project.write("ray_fan", FLOW)
    run = mod.fan.run(client=client, executor="ray", max_parallel=2)
    assert run.status == "completed", run.error
    assert run.executor == "ray"
    assert load_result(run, client=client) == sum(x * x for x in range(5))
    items = sorted(
        (s for s in run.steps if s.invocation.startswith("square[")), key=lambda s: s.invocation
    )
    assert len(items) == 5
    import os

    from loopwright.pipelines import load_output

    pids = {load_output(s.outputs[0], client=client)["pid"] for s in items}
    assert os.getpid() not in pids  # the items ran in Ray's worker processes
    for i, item in enumerate(items):
        assert client.get_run(item.run_id or "").metrics["x"].value == i

    again = mod.fan.run(client=client, executor="ray")
    assert {s.status for s in again.steps} == {"cached"}
