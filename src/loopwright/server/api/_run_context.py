"""What a remote run records about the client's machine: the request body as a ``RunContext``.

A run created over HTTP executes on the client: its host, entry point, git state and Python
environment are the client's, sent with the request, not the server's. The tracking service
records them (``TrackingService._create_run``) and computes the environment's id from its
content, so a client cannot attach another environment's id to its packages.
"""

from __future__ import annotations

from ...tracking.capture import CodeVersion, Environment, RunContext
from ._schemas import RunContextIn

__all__ = ["run_context"]


def run_context(body: RunContextIn) -> RunContext:
    """The client's context as the tracking service takes it (no environment without both
    ``python_version`` and ``packages``)."""
    environment = None
    if body.python_version is not None and body.packages is not None:
        environment = Environment.of(body.python_version, body.packages)
    return RunContext(
        host=body.host,
        entry_point=body.entry_point,
        code=CodeVersion(commit=body.git_commit, branch=body.git_branch, dirty=body.git_dirty),
        environment=environment,
    )
