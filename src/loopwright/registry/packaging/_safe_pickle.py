"""The one guarded place where Loopwright reads pickles.

Pickles (and cloudpickle files, which are pickles too) run code while they load: a crafted file
can execute any command. Loopwright's own packages never hold one; only models imported from
MLflow may. :func:`load_pickle` reads such a file only when the caller says it trusts the source,
and does not open the file otherwise. A test fails if any other module calls a pickle loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._trust import untrusted

__all__ = ["load_pickle"]


def load_pickle(path: Path, *, trusted: bool) -> Any:
    """Unpickle ``path`` if ``trusted``; otherwise raise without reading it.

    Args:
        path: the pickle or cloudpickle file.
        trusted: the caller trusts whoever wrote the file.

    Raises:
        UntrustedModel: ``trusted`` is false (a ``PermissionDenied``).
    """
    if not trusted:
        raise untrusted(
            f"file {Path(path).name!r}",
            "is a pickle",
            alternative="convert the model once with trusted=True so it is stored as skops",
        )
    import pickle

    # cloudpickle output is an ordinary pickle that refers to cloudpickle's helpers, so the
    # standard unpickler reads both once cloudpickle is importable.
    with open(path, "rb") as file:
        return pickle.load(file)  # noqa: S301 - the caller opted in with trusted=True
