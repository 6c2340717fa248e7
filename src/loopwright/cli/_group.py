"""The root command group: any error becomes one line on stderr and exit status 1.

Commands turn Loopwright's own errors into messages themselves (``handle_errors``); this is the
net under them, so that an operating-system, encoding or unforeseen error never reaches the
user as a traceback. ``loopwright --debug ...`` lets the error through with its traceback.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from ..errors import LoopwrightError
from ._help_types import use_click_help_types
from ._output import fail

__all__ = ["RootGroup", "describe_error"]

# Exit, Abort and usage errors carry their own exit status and message: let them through.
_OWN = (TyperException, typer.Exit, typer.Abort)


def describe_error(exc: Exception) -> tuple[str, str | None]:
    """The one-line message and the detail (an error code) for ``exc``."""
    if isinstance(exc, LoopwrightError):
        return exc.message, exc.code
    if isinstance(exc, UnicodeError):
        return f"a file or value is not valid UTF-8 text ({exc})", type(exc).__name__
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}", type(exc).__name__
    return (
        f"unexpected {type(exc).__name__}: {exc}; rerun with --debug for the traceback "
        "and report it",
        None,
    )


class RootGroup(TyperGroup):
    """Loopwright's root group: reports errors the commands did not (see the module doc).

    It also gives every command's ``--help`` Click's placeholders (see ``_help_types``).
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        use_click_help_types(self)  # built last, so every subcommand exists by now

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _OWN:
            raise
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            message, detail = describe_error(exc)
            fail(message, detail=detail)
