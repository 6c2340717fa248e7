"""Shared CLI output: Rich tables for people, ``--json`` for programs, errors that say the fix."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import typer

from ..errors import LoopwrightError

__all__ = [
    "JSON_OPTION",
    "console",
    "emit_json",
    "fail",
    "format_ms",
    "handle_errors",
    "print_table",
]

F = TypeVar("F", bound=Callable[..., Any])

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table.")


def console(stderr: bool = False) -> Any:
    import shutil

    from rich.console import Console

    # Piped output gets a wide page instead of Rich's 80 columns, so ids are not folded.
    width = shutil.get_terminal_size((160, 24)).columns
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def format_ms(value: int | None) -> str:
    """Milliseconds since the epoch as a short UTC time, '' for None."""
    if value is None:
        return ""
    return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _strict(data: Any) -> Any:
    """NaN and infinities become null: strict JSON has no spelling for them."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {key: _strict(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_strict(value) for value in data]
    return data


def emit_json(data: Any) -> None:
    text = json.dumps(_strict(data), indent=2, default=str, ensure_ascii=False, allow_nan=False)
    sys.stdout.write(text + "\n")


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column == "id")
    for row in rows:
        table.add_row(*("" if cell is None else escape(str(cell)) for cell in row))
    console().print(table)


def fail(message: str, code: int = 1, *, detail: str | None = None) -> None:
    """Print ``message`` (plain text, never markup) in red and exit with ``code``."""
    from rich.markup import escape

    suffix = f" [dim]({escape(detail)})[/]" if detail else ""
    console(stderr=True).print(f"[bold red]error:[/] {escape(message)}{suffix}")
    raise typer.Exit(code)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn Loopwright errors into one red line and exit status 1 (no traceback)."""
    try:
        yield
    except LoopwrightError as exc:
        fail(exc.message, detail=exc.code)
