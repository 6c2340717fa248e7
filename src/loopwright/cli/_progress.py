"""The one progress bar of the CLI: Rich, on stderr, gone when done (stdout stays the result)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._output import console

__all__ = ["progress_bar"]


@contextmanager
def progress_bar(label: str, total: int | None, enabled: bool) -> Iterator[Any]:
    """``update(advance=n)`` or ``update(completed=n, total=m)`` on a bar labelled ``label``;
    a no-op when not ``enabled`` (JSON output, not a terminal)."""
    if not enabled:
        yield lambda **_kwargs: None
        return
    from functools import partial

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=True,
    ) as bar:
        yield partial(bar.update, bar.add_task(label, total=total))
