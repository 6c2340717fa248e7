"""Shared CLI output: Rich tables for people, ``--json`` for programs, errors that say the fix."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from .._humanize import format_duration as format_duration
from .._humanize import format_ms as format_ms
from ..errors import LoopwrightError

if TYPE_CHECKING:
    from rich.text import Text

__all__ = [
    "JSON_OPTION",
    "cell_text",
    "console",
    "emit_json",
    "fail",
    "format_duration",
    "format_ms",
    "format_number",
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


def format_number(value: float | None, digits: int = 6) -> str:
    """A metric value in ``digits`` significant digits ('nan', 'inf' as such); '' for None."""
    return "" if value is None else f"{value:.{digits}g}"


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
    """A Rich table; cells print literally (``rich.text.Text`` cells keep their own style)."""
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column == "id")
    for row in rows:
        table.add_row(*(cell_text(cell) for cell in row))
    console().print(table)


def cell_text(cell: Any, style: str = "") -> Text:
    """``cell`` as literal Rich text (never parsed as markup); None becomes ''."""
    from rich.text import Text

    if isinstance(cell, Text):
        return cell
    return Text("" if cell is None else str(cell), style=style)


def fail(message: str, code: int = 1, *, detail: str | None = None) -> None:
    """Print ``message`` (plain text, never markup) in red and exit with ``code``."""
    from rich.markup import escape

    suffix = f" [dim]({escape(detail)})[/]" if detail else ""
    # A multi-line message (a filter with a caret under the bad token) keeps the code on line one.
    first, newline, rest = message.partition("\n")
    text = f"[bold red]error:[/] {escape(first)}{suffix}{newline}{escape(rest)}"
    # Not folded at the console's width: a path or id in the message stays whole to copy (and
    # to match: the width is the terminal's, 80 columns under some runners).
    console(stderr=True).print(text, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn Loopwright errors into one red line and exit status 1 (no traceback)."""
    try:
        yield
    except LoopwrightError as exc:
        fail(exc.message, detail=exc.code)
