"""The ``loopwright`` logger's handler follows ``sys.stderr`` instead of keeping the first one."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest

from loopwright._logging import configure_logging, get_logger


@pytest.fixture
def fresh_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("loopwright")
    handlers, level = logger.handlers[:], logger.level
    logger.handlers.clear()
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


def test_records_go_to_the_stderr_of_the_moment_even_after_the_first_one_closed(
    fresh_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("INFO")
    get_logger("gateway").info("one")
    first.close()  # e.g. an in-process CLI run under a test runner ended
    monkeypatch.setattr(sys, "stderr", second)
    get_logger("gateway").error("two %d", 2)
    text = second.getvalue()
    assert "ERROR loopwright.gateway: two 2" in text and "Logging error" not in text


def test_configuring_twice_adds_one_handler_and_keeps_an_applications_own(
    fresh_logger: logging.Logger,
) -> None:
    configure_logging("INFO")
    configure_logging("DEBUG")
    assert len(fresh_logger.handlers) == 1 and fresh_logger.level == logging.DEBUG
    own = logging.NullHandler()
    fresh_logger.handlers[:] = [own]
    configure_logging("WARNING")
    assert fresh_logger.handlers == [own]
