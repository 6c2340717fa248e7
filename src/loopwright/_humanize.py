"""Times and durations as people read them, the same in the CLI and the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_duration", "format_ms"]


def format_ms(value: int | float | None) -> str:
    """Milliseconds since the epoch as a short UTC time, '' for None."""
    if value is None:
        return ""
    return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(ms: int | float | None) -> str:
    """A duration for people: '850 ms', '12.3 s', '4m 05s', '2h 03m'; '' for None."""
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
