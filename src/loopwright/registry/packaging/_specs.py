"""One column or tensor of a model signature (the spec both signatures and conforming use)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import InvalidInput
from . import _dtypes

__all__ = ["ColumnSpec"]


@dataclass(frozen=True)
class ColumnSpec:
    """One input or output: a typed table column, or a tensor when ``shape`` is given.

    Args:
        name: the column or tensor name; ``None`` for an unnamed output or a lone tensor.
        type: a column type (``"boolean" "integer" "long" "float" "double" "string" "binary"
            "datetime"``), or for a tensor a numpy dtype name (``"float32"``, ``"str"`` ...).
        shape: ``None`` for a column; for a tensor its dimensions, ``-1`` where any size fits.
        required: whether a column may be left out of the input (MLflow's ``required``).
    """

    name: str | None
    type: str
    shape: tuple[int, ...] | None = None
    required: bool = True

    def __post_init__(self) -> None:
        if self.shape is None and self.type not in _dtypes.COLUMN_TYPES:
            raise InvalidInput(
                f"column type {self.type!r} is unknown; use one of "
                f"{', '.join(_dtypes.COLUMN_TYPES)}"
            )
        if self.shape is not None:
            if self.type not in _dtypes.TENSOR_TYPES:
                raise InvalidInput(
                    f"tensor type {self.type!r} is unknown; use a numpy dtype name among "
                    f"{', '.join(sorted(_dtypes.TENSOR_TYPES))}"
                )
            if any(isinstance(d, bool) or not isinstance(d, int) or d < -1 for d in self.shape):
                raise InvalidInput(
                    f"tensor shape {list(self.shape)} is invalid; give sizes >= 0, or -1 "
                    "for a free dimension"
                )

    @property
    def is_tensor(self) -> bool:
        return self.shape is not None

    def describe(self) -> str:
        """``"age (long)"`` for a column, ``"X: float32 (-1, 4)"`` for a tensor."""
        if self.shape is None:
            return f"{self.name} ({self.type})"
        dims = ", ".join(str(d) for d in self.shape) + ("," if len(self.shape) == 1 else "")
        return f"{self.name + ': ' if self.name else ''}{self.type} ({dims})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "shape": None if self.shape is None else list(self.shape),
            "required": self.required,
        }

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "column") -> ColumnSpec:
        """Read one spec from untrusted JSON; errors name ``where`` (e.g. ``inputs[2]``)."""
        if not isinstance(data, dict):
            raise InvalidInput(f"{where} must be an object, not {type(data).__name__}")
        unknown = set(data) - {"name", "type", "shape", "required"}
        if unknown:
            raise InvalidInput(f"{where} has unknown fields {sorted(unknown)}; remove them")
        name, kind, shape = data.get("name"), data.get("type"), data.get("shape")
        required = data.get("required", True)
        if name is not None and not isinstance(name, str):
            raise InvalidInput(f"{where}.name must be a string or null")
        if not isinstance(kind, str):
            raise InvalidInput(f"{where}.type must be a string")
        if shape is not None and not isinstance(shape, list):
            raise InvalidInput(f"{where}.shape must be a list of integers or null")
        if not isinstance(required, bool):
            raise InvalidInput(f"{where}.required must be true or false")
        try:
            return cls(name, kind, None if shape is None else tuple(shape), required)
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc.message}") from None
