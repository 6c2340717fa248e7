"""Assertions shared by the CLI tests."""

from __future__ import annotations

from typing import Any


def assert_clean_failure(result: Any, *fragments: str, code: int = 1) -> None:
    """Exit status ``code``, one line naming ``fragments``, and no traceback."""
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
