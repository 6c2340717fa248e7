"""``--help`` without Typer's ``<str>``/``<bool>`` type placeholders.

Typer's Rich help prints each parameter's Python type in angle brackets: ``<bool>`` beside
every flag (which takes no value), ``<str>`` beside every argument (whose name is already the
placeholder). Loopwright's help follows Click's convention instead: flags and arguments show
no type, and an option that takes a value shows its metavar in capitals (``TEXT``,
``INTEGER``, ``PATH``), or the choices (``[a|b]``). A ``metavar=`` given to an option wins.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperOption

__all__ = ["use_click_help_types"]

_NAMES = {
    "str": "TEXT",
    "int": "INTEGER",
    "int range": "INTEGER",
    "float": "FLOAT",
    "float range": "FLOAT",
    "bool": "BOOLEAN",
    "Path": "PATH",
    "datetime": "DATETIME",
    "UUID": "UUID",
}


def _click_label(typer_label: str) -> str:
    """``<str>`` -> ``TEXT``; ``<a|b>`` -> ``[a|b]``; ``<int>...`` -> ``INTEGER...``."""
    repeats = "..." if typer_label.endswith("...") else ""
    inner = typer_label.removesuffix("...").removeprefix("<").removesuffix(">")
    if inner in _NAMES:
        return _NAMES[inner] + repeats
    if "|" in inner:
        return f"[{inner}]{repeats}"
    return inner.upper() + repeats


class _ClickHelpOption(TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        if self.metavar is not None:
            return self.metavar
        if self.is_flag or self.count:
            return None
        shown = super().display_type_rich(ctx)
        return None if shown is None else _click_label(shown)


class _ClickHelpArgument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        shown = self.display_type(ctx)
        return _click_label(shown) if "|" in shown else None  # choices are worth showing


def use_click_help_types(command: Any) -> None:
    """Give every parameter of ``command`` and its subcommands Click's help placeholders.

    The classes only override how the type is displayed, so the objects keep their state.
    """
    # The help option is made on first use and then kept: make it now, to convert it too.
    help_option = command.get_help_option(
        command.context_class(command, **command.context_settings)
    )
    for param in [*command.params, help_option]:
        if type(param) is TyperOption:
            param.__class__ = _ClickHelpOption
        elif type(param) is TyperArgument:
            param.__class__ = _ClickHelpArgument
    for sub in getattr(command, "commands", {}).values():
        use_click_help_types(sub)
