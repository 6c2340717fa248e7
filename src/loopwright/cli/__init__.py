"""The ``loopwright`` (alias ``lw``) command line. Each command group lives in its own module."""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    from .app import run

    run()
