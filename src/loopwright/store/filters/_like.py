r"""LIKE patterns, defined once: ``%`` is any run of characters, ``_`` any one character, and a
backslash makes the next ``%``, ``_`` or backslash literal (a backslash before anything else is
itself literal). The pattern is rendered for SQL's LIKE, for SQLite's case-sensitive GLOB, or
matched in memory.

Example:
    >>> like_matches(like_parts(r"a\_%"), "a_b"), like_matches(like_parts(r"a\_%"), "axb")
    (True, False)
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Part", "glob_pattern", "like_matches", "like_parts", "sql_like_pattern"]

# One pattern element: ("%", "") any run, ("_", "") any character, ("", char) that character.
Part = tuple[str, str]
LIKE_ESCAPE = "\\"


def like_parts(pattern: str) -> list[Part]:
    parts: list[Part] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and pattern[i + 1 : i + 2] in ("%", "_", "\\"):
            parts.append(("", pattern[i + 1]))
            i += 2
            continue
        parts.append((char, "") if char in "%_" else ("", char))
        i += 1
    return parts


def sql_like_pattern(parts: list[Part]) -> str:
    """The pattern for ``LIKE ... ESCAPE '\\'``."""
    return "".join(wild or (LIKE_ESCAPE + char if char in "%_\\" else char) for wild, char in parts)


def glob_pattern(parts: list[Part]) -> str:
    """The pattern for SQLite's GLOB (case-sensitive, unlike SQLite's LIKE)."""
    wildcards = {"%": "*", "_": "?"}
    return "".join(
        wildcards[wild] if wild else (f"[{char}]" if char in "*?[" else char)
        for wild, char in parts
    )


def like_matches(parts: list[Part], text: str, *, fold_case: bool = False) -> bool:
    """Whether ``text`` matches, in time proportional to len(parts) * len(text) at worst."""
    same: Callable[[str, str], bool] = (
        (lambda a, b: a.lower() == b.lower()) if fold_case else (lambda a, b: a == b)
    )
    p = t = 0
    star, resume = -1, 0  # the last ``%`` seen, and where in text it would next resume
    while t < len(text):
        if p < len(parts) and parts[p][0] == "%":
            star, resume = p, t
            p += 1
        elif p < len(parts) and (parts[p][0] == "_" or same(parts[p][1], text[t])):
            p += 1
            t += 1
        elif star >= 0:
            resume += 1
            p, t = star + 1, resume
        else:
            return False
    return all(wild == "%" for wild, _ in parts[p:])
