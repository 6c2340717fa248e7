"""The error every refusal to load an unsafe model package raises, with one wording.

Loading pickled objects, or importing code shipped inside a package, runs whatever its author
chose. Loopwright refuses both unless the caller passes ``trusted=True``.
"""

from __future__ import annotations

from ...errors import UntrustedModel

__all__ = ["UntrustedModel", "untrusted"]


def untrusted(what: str, risk: str, *, alternative: str = "") -> UntrustedModel:
    """An :class:`UntrustedModel` saying what is refused, why, and how to opt in.

    Example:
        >>> untrusted("package 'm'", "holds a pickled model").message  # doctest: +ELLIPSIS
        "package 'm' holds a pickled model; loading it can run arbitrary code ... trusted=True ..."
    """
    message = (
        f"{what} {risk}; loading it can run arbitrary code chosen by whoever wrote it. "
        "Pass trusted=True only if you trust the package's origin"
    )
    if alternative:
        message += f", or {alternative}"
    return UntrustedModel(message)
