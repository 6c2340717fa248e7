"""The ``loopwright`` logger: one stderr handler at the configured level, added once.

Libraries should not configure the root logger, so only the ``loopwright`` logger is touched, and
not at all if the application has already given it a handler.
"""

from __future__ import annotations

import logging

__all__ = ["configure_logging", "get_logger"]

_ROOT = "loopwright"


def get_logger(name: str) -> logging.Logger:
    """The logger for a module, e.g. ``get_logger(__name__)``."""
    return logging.getLogger(name if name.startswith(_ROOT) else f"{_ROOT}.{name}")


def configure_logging(level: str) -> None:
    """Send ``loopwright`` records at ``level`` and above to stderr, unless already configured."""
    logger = logging.getLogger(_ROOT)
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
