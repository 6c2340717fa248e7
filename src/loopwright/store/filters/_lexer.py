r"""Tokens of MLflow's filter language, and errors that point at a character.

Token kinds:

- ``string``: ``'...'`` or ``"..."``; ``name``: ``\`...\```. Inside, a doubled quote or a
  backslashed quote stands for the quote, ``\\`` for one backslash, and any other backslash is
  kept (so ``'a\%'`` reaches LIKE as the escape it is meant to be).
- ``word``: a run of letters, digits and ``_ . - + /`` (names, keys, numbers, keywords);
- ``op``: a run of ``! < > =``; ``punct``: ``(``, ``)`` or ``,``; ``end`` closes the list.

Anything else outside quotes is refused where it stands, and NUL or a lone surrogate anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

from ...errors import InvalidInput

__all__ = ["Token", "fail", "tokenize"]

_SNIPPET = 60  # characters of context shown either side of the caret
_PLAIN = re.compile(r"(?P<word>[\w.\-+/]+)|(?P<op>[!<>=]+)|(?P<punct>[(),])|(?P<ws>\s+)")
_QUOTES = {"'": "string", '"': "string", "`": "name"}
# No stored name or value holds these, and drivers refuse them (PostgreSQL: NUL; UTF-8: lone
# surrogates), so they are refused here rather than by the database.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str  # as written
    value: str  # unquoted for strings and names
    start: int
    end: int


def fail(what: str, text: str, message: str, pos: int) -> NoReturn:
    """Raise ``InvalidInput`` with ``message``, the text around ``pos`` and a caret under it."""
    found = "the end" if pos >= len(text) else repr(text[pos:].split(maxsplit=1)[0][:20])
    shown = re.sub(r"\s", " ", text)  # keep the caret aligned under tabs and newlines
    shown = _UNSTORABLE.sub("\N{REPLACEMENT CHARACTER}", shown)  # the message must encode
    left = max(0, pos - _SNIPPET)
    snippet = ("…" if left else "") + shown[left : pos + _SNIPPET]
    snippet += "…" if pos + _SNIPPET < len(shown) else ""
    caret = " " * (pos - left + (1 if left else 0)) + "^"
    raise InvalidInput(
        f"invalid {what}: {message} (found {found} at character {pos + 1})\n"
        f"    {snippet}\n    {caret}"
    )


def tokenize(text: str, what: str = "filter") -> list[Token]:
    unstorable = _UNSTORABLE.search(text)
    if unstorable is not None:
        char = f"U+{ord(unstorable.group()):04X}"
        fail(
            what,
            text,
            f"{char} cannot appear in a filter: no name or value holds it",
            unstorable.start(),
        )
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos] in _QUOTES:
            token = _quoted(text, pos, what)
        else:
            found = _PLAIN.match(text, pos)
            if found is None:
                fail(what, text, f"unexpected {text[pos]!r}", pos)
            kind = str(found.lastgroup)
            token = Token(kind, found.group(), found.group(), pos, found.end())
        if token.kind != "ws":
            tokens.append(token)
        pos = token.end
    tokens.append(Token("end", "", "", len(text), len(text)))
    return tokens


def _quoted(text: str, start: int, what: str) -> Token:
    quote = text[start]
    chars: list[str] = []
    pos = start + 1
    while pos < len(text):
        char, after = text[pos], text[pos + 1 : pos + 2]
        if char == "\\" and after in (quote, "\\"):
            chars.append(after)
            pos += 2
        elif char == quote and after == quote:
            chars.append(quote)
            pos += 2
        elif char == quote:
            kind = _QUOTES[quote]
            return Token(kind, text[start : pos + 1], "".join(chars), start, pos + 1)
        else:
            chars.append(char)
            pos += 1
    fail(
        what,
        text,
        f"unterminated {_QUOTES[quote]}: no closing {quote} for the one opened here",
        start,
    )
