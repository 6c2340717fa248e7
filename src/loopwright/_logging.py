"""The ``loopwright`` logger: one stderr handler at the configured level, added once.

Libraries should not configure the root logger, so only the ``loopwright`` logger is touched, and
not at all if the application has already given it a handler.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

__all__ = ["configure_logging", "get_logger"]

_ROOT = "loopwright"


def get_logger(name: str) -> logging.Logger:
    """The logger for a module, e.g. ``get_logger(__name__)``."""
    return logging.getLogger(name if name.startswith(_ROOT) else f"{_ROOT}.{name}")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not when it was created.

    A handler bound at creation keeps a stream that may be replaced and closed later (a CLI run
    in-process under a test runner or a notebook), and every record after that fails to print.
    """

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr


def configure_logging(level: str) -> None:
    """Send ``loopwright`` records at ``level`` and above to stderr, unless already configured."""
    logger = logging.getLogger(_ROOT)
    logger.setLevel(level)
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
