"""Where a run executes: one environment hash, and the context a server records for a client."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopwright.config import resolve_settings
from loopwright.errors import TrackingError
from loopwright.store.home import open_store
from loopwright.tracking import TrackingService
from loopwright.tracking.capture import (
    CodeVersion,
    Environment,
    RunContext,
    capture_environment,
    current_code_version,
)


def test_the_environment_id_is_one_hash_of_its_content() -> None:
    env = capture_environment()
    assert Environment.of(env.python_version, env.packages) == env
    shuffled = dict(reversed(list(env.packages.items())))
    assert Environment.of(env.python_version, shuffled).id == env.id
    assert Environment.of("0.0.0", env.packages).id != env.id


def test_a_new_run_carries_the_context_it_recorded(tmp_path: Path) -> None:
    tracking = TrackingService(open_store(resolve_settings(home=tmp_path)))
    try:
        run = tracking.create_run(experiment="ctx")
        stored = tracking.get_run(run.id)
    finally:
        tracking.close()
    assert run.environment_id == stored.environment_id == capture_environment().id
    assert run.git_commit == stored.git_commit == current_code_version().commit


def test_a_given_context_replaces_the_servers_own(tmp_path: Path) -> None:
    tracking = TrackingService(open_store(resolve_settings(home=tmp_path)), capture=False)
    env = Environment.of("3.11.9", {"numpy": "2.0.0"})
    context = RunContext(
        host="laptop",
        entry_point="train.py",
        code=CodeVersion(commit="a" * 40, branch="main", dirty=False),
        environment=env,
    )
    try:
        run = tracking._create_run(
            experiment="ctx", name=None, tags=None, parent_run_id=None, context=context
        )
        stored = tracking.get_run(run.id)
        assert (stored.host, stored.entry_point) == ("laptop", "train.py")
        assert (stored.git_commit, stored.git_branch, stored.git_dirty) == ("a" * 40, "main", False)
        assert stored.environment_id == env.id
        assert tracking.get_environment(env.id).packages == {"numpy": "2.0.0"}
        bare = tracking._create_run(
            experiment="ctx", name=None, tags=None, parent_run_id=None, context=RunContext()
        )
        assert tracking.get_run(bare.id).environment_id is None
    finally:
        tracking.close()


def test_autologging_without_a_client_logs_only_into_the_active_run() -> None:
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LinearRegression

    from loopwright.tracking.autolog import AutologWarning, autolog

    autolog(log_models=False)
    try:
        with pytest.warns(AutologWarning, match=r"lw\.autolog"):
            LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    finally:
        autolog(disable=True)


def test_a_run_handle_without_a_model_logger_says_how_to_get_one(tmp_path: Path) -> None:
    from loopwright.tracking import ActiveRun

    tracking = TrackingService(open_store(resolve_settings(home=tmp_path)))
    try:
        handle = ActiveRun(tracking, tracking.create_run(experiment="ctx"))
        with pytest.raises(TrackingError, match=r"Client\.start_run"):
            handle.log_model(object())
    finally:
        tracking.close()
