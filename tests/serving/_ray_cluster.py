"""A local Ray instance for the batch-scoring tests: started once per session, two CPUs.

Imported by name into the test modules that use it (``from _ray_cluster import ray_local``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """``ray.init(num_cpus=2)`` once; batch scoring finds it initialized and leaves it running."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()
