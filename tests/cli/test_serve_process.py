"""``loopwright serve``'s process set-up: its help, and the heap frozen once models are loaded."""

from __future__ import annotations

import gc

import pytest
from typer.testing import CliRunner

from loopwright.cli.app import app
from loopwright.cli.serve import app_from_environment
from loopwright.serving.server import CONFIG_VARIABLE, ServeConfig


def test_a_worker_freezes_its_heap_once_its_app_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    # Full collections then skip the modules and models: the prediction log's writer made them
    # stall the event loop ~35 ms, ~2.5 ms once frozen.
    monkeypatch.setenv(CONFIG_VARIABLE, ServeConfig(sources=()).to_json())
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        assert app_from_environment().state.repository.index() == []
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_serve_help_reads_as_paragraphs_and_says_where_the_log_goes() -> None:
    shown = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "400"})
    assert shown.exit_code == 0, shown.output
    lines = [line.strip() for line in shown.output.splitlines()]
    # With room, a short paragraph is one line: no break where the source's wrapping put one.
    assert (
        "Aliases and stages are resolved once at start, so every worker serves the same "
        "version." in lines
    )
    paragraphs = " ".join(lines).split("  ")  # blank lines between paragraphs
    logged = next(p.strip() for p in paragraphs if p.strip().startswith("Predictions are logged"))
    assert "the prediction_log setting (LOOPWRIGHT_PREDICTION_LOG" in logged
    assert "else to the blob store's predictions/ folder, where client.predictions" in logged
    assert logged.endswith("give serve and the server the same prediction_log.")
