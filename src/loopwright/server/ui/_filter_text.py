"""Filter text the dashboard writes for a reader (links to the traces of a prompt version or a
route): values quoted as the filter lexer reads them, so any name stays one string."""

from __future__ import annotations

__all__ = ["link_filter", "quoted"]


def quoted(text: str) -> str:
    """``text`` as a single-quoted filter string (a doubled quote and backslash stand for one)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def link_filter(kind: str, target: str) -> str:
    """The trace filter for traces linked to ``target`` (``prompt_version``: ``name/3``)."""
    return f"link.{kind} = {quoted(target)}"
