"""The CLI's one progress bar (data add/push/pull and predict draw it)."""

from __future__ import annotations

import pytest

from loopwright.cli._progress import progress_bar


def test_a_disabled_bar_takes_every_update_and_draws_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress_bar("scoring rows", None, False) as update:
        update(advance=3, total=None)
        update(completed=5, total=10)
    assert capsys.readouterr() == ("", "")


def test_an_enabled_bar_counts_and_totals_on_stderr_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress_bar("pushing", None, True) as update:
        update(advance=2)
        update(completed=7, total=9)
        task = update.args[0]  # the bar's task: what the updates moved
        progress = update.func.__self__
        assert (progress.tasks[task].completed, progress.tasks[task].total) == (7, 9)
    assert capsys.readouterr().out == ""
