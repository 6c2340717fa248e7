"""What the prompt tests share besides fixtures: a settable clock and the service factory type."""

from __future__ import annotations

from collections.abc import Callable

from loopwright.prompts.service import PromptService

AsUser = Callable[[str], PromptService]


class Clock:
    """A settable clock in milliseconds, shared by the services of one test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000_000

    def __call__(self) -> int:
        return self.now
