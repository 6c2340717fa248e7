"""What a dataset may be called: checked by the service and by pointer files alike."""

from __future__ import annotations

import re

from ..errors import InvalidInput
from ..store.limits import DATASET_NAME

__all__ = ["check_dataset_name"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # fullmatch: "$" would let "x\n" in


def check_dataset_name(name: object) -> str:
    """``name`` if it is a valid dataset name, else :class:`InvalidInput` saying what is."""
    if not isinstance(name, str) or len(name) > DATASET_NAME or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"dataset name {name!r} must be 1-{DATASET_NAME} characters, start with a letter or "
            "digit and use only letters, digits, '.', '_' and '-'"
        )
    return name
