"""Model signatures: the columns or tensors a model takes and returns, checked before predict.

A signature is column-based (a table: each input is a named column with a type such as
``"double"``) or tensor-based (arrays: a numpy dtype name and a shape whose ``-1`` marks a free
dimension, such as the batch). It is inferred from an input example, stored in the package
manifest, converted to and from MLflow's format, and :meth:`Signature.validate` checks what a
caller sends, reorders the columns and safely widens types before the model sees it.

Example:
    >>> sig = Signature(inputs=(ColumnSpec("age", "long"), ColumnSpec("income", "double")))
    >>> sig.validate({"income": ["high"]}, what="model 'churn'")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    loopwright.errors.SignatureError: input does not match the signature of model \
'churn': missing column 'age'; column 'income' expects double, got string (...); send ...
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import InvalidInput, SignatureError
from . import _conform, _dtypes
from ._specs import ColumnSpec as ColumnSpec

__all__ = ["ColumnSpec", "Signature", "SignatureError", "infer_signature"]


@dataclass(frozen=True)
class Signature:
    """What a model takes (``inputs``) and returns (``outputs``, if known)."""

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...] | None = None

    def __post_init__(self) -> None:
        for label, specs in (("inputs", self.inputs), ("outputs", self.outputs)):
            if specs is None:
                continue
            if not specs:
                raise InvalidInput(f"signature {label} are empty; give at least one spec")
            if len({spec.is_tensor for spec in specs}) > 1:
                raise InvalidInput(f"signature {label} mix columns and tensors; use one kind")
            names = [spec.name for spec in specs]
            if len(specs) > 1 and (None in names or len(set(names)) != len(names)):
                raise InvalidInput(f"signature {label} need distinct names; got {names}")
        if not self.inputs[0].is_tensor and self.inputs[0].name is None:
            raise InvalidInput("signature input columns need names")

    @property
    def is_tensor_based(self) -> bool:
        return self.inputs[0].is_tensor

    def validate(self, data: Any, *, what: str = "the model") -> Any:
        """Check ``data`` against the inputs and return it as the model should receive it.

        Column signatures accept a DataFrame, a dict of columns or a list of row dicts, and
        return a DataFrame holding the signature's columns in its order: extra columns are
        dropped, and integer columns are widened to ``long``/``double`` (``float`` to
        ``double``) where the signature asks for it. Tensor signatures accept arrays, lists,
        DataFrames or (for named tensors) dicts, and cast them where numpy calls it safe.

        Raises:
            SignatureError: naming every missing column and every mistyped one with the type
                expected and the type received.
        """
        if self.is_tensor_based:
            result, problems = _conform.tensors(self.inputs, data)
        else:
            result, problems = _conform.columns(self.inputs, data)
        if problems:
            raise SignatureError(
                f"input does not match the signature of {what}: {'; '.join(problems)}; "
                f"send {_expected(self.inputs)}",
                problems,
            )
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [spec.to_dict() for spec in self.inputs],
            "outputs": None if self.outputs is None else [spec.to_dict() for spec in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "signature") -> Signature:
        """Read a signature from untrusted JSON (a manifest); errors name the field."""
        if not isinstance(data, dict):
            raise InvalidInput(f"{where} must be an object or null, not {type(data).__name__}")
        unknown = set(data) - {"inputs", "outputs"}
        if unknown:
            raise InvalidInput(f"{where} has unknown fields {sorted(unknown)}; remove them")
        specs: dict[str, tuple[ColumnSpec, ...] | None] = {}
        for label in ("inputs", "outputs"):
            raw = data.get(label)
            if raw is None and label == "outputs":
                specs[label] = None
                continue
            if not isinstance(raw, list):
                raise InvalidInput(f"{where}.{label} must be a list of specs")
            specs[label] = tuple(
                ColumnSpec.from_dict(item, where=f"{where}.{label}[{i}]")
                for i, item in enumerate(raw)
            )
        try:
            return cls(specs["inputs"] or (), specs["outputs"])
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc.message}") from None

    def to_mlflow(self) -> dict[str, str | None]:
        """MLflow's ``signature`` entry of an ``MLmodel`` file (specs as JSON strings)."""
        outputs = None if self.outputs is None else _mlflow_specs(self.outputs)
        return {"inputs": _mlflow_specs(self.inputs), "outputs": outputs}

    @classmethod
    def from_mlflow(cls, data: Mapping[str, Any]) -> Signature:
        """Read the ``signature`` entry of an MLflow ``MLmodel`` file.

        ``inputs``/``outputs`` are JSON strings (as MLflow writes them) or already-parsed lists.
        ``params`` are ignored. MLflow's nested types (``array``, ``object``, ``map``, ``any``)
        have no Loopwright equivalent and raise :class:`InvalidInput`.
        """
        if not isinstance(data, Mapping):
            raise InvalidInput("the MLflow signature must be a mapping with 'inputs'")
        parsed: dict[str, tuple[ColumnSpec, ...] | None] = {}
        for label in ("inputs", "outputs"):
            raw = data.get(label)
            if isinstance(raw, str):
                try:
                    raw = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise InvalidInput(f"MLflow signature {label} is not JSON ({exc})") from None
            if raw is None and label == "outputs":
                parsed[label] = None
                continue
            if not isinstance(raw, list):
                raise InvalidInput(f"MLflow signature {label} must be a list of specs")
            parsed[label] = tuple(
                _from_mlflow_spec(item, f"MLflow signature {label}[{i}]")
                for i, item in enumerate(raw)
            )
        try:
            return cls(parsed["inputs"] or (), parsed["outputs"])
        except InvalidInput as exc:
            raise InvalidInput(f"MLflow signature: {exc.message}") from None


def infer_signature(model_input: Any, model_output: Any = None) -> Signature:
    """The signature of a model that takes ``model_input`` (and returns ``model_output``).

    A DataFrame gives typed columns; a numpy array (or a list of numbers) gives a tensor whose
    first dimension is free; a dict of arrays gives named tensors; a list of row dicts gives
    columns. A Series output gives one column.

    Example:
        >>> import numpy as np
        >>> infer_signature(np.zeros((5, 3), dtype="float32")).inputs
        (ColumnSpec(name=None, type='float32', shape=(-1, 3), required=True),)
    """
    outputs = None if model_output is None else _conform.infer_specs(model_output, "model_output")
    return Signature(_conform.infer_specs(model_input, "model_input"), outputs)


def _expected(specs: Sequence[ColumnSpec], limit: int = 12) -> str:
    shown = ", ".join(spec.describe() for spec in specs[:limit])
    more = ""
    if len(specs) > limit:
        more = f" and {len(specs) - limit} more (see the model's signature)"
    if not specs[0].is_tensor:
        kind = "a table with the columns"
    else:
        kind = "an array" if len(specs) == 1 and specs[0].name is None else "arrays"
    return f"{kind} {shown}{more}"


def _mlflow_specs(specs: Sequence[ColumnSpec]) -> str:
    items: list[dict[str, Any]] = []
    for spec in specs:
        if spec.shape is None:
            item: dict[str, Any] = {"type": spec.type}
        else:
            tensor = {"dtype": spec.type, "shape": list(spec.shape)}
            item = {"type": "tensor", "tensor-spec": tensor}
        if spec.name is not None:
            item["name"] = spec.name
        item["required"] = spec.required
        items.append(item)
    return json.dumps(items)


def _from_mlflow_spec(item: Any, where: str) -> ColumnSpec:
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        raise InvalidInput(f"{where} must be an object with a 'type' string")
    name, required = item.get("name"), item.get("required", True)
    if (name is not None and not isinstance(name, str)) or not isinstance(required, bool):
        raise InvalidInput(f"{where} has a non-string 'name' or a non-boolean 'required'")
    kind = item["type"]
    try:
        if kind == "tensor":
            spec = item.get("tensor-spec")
            if not isinstance(spec, dict) or not isinstance(spec.get("shape"), list):
                raise InvalidInput("a tensor needs 'tensor-spec' with 'dtype' and 'shape'")
            return ColumnSpec(name, str(spec.get("dtype")), tuple(spec["shape"]), required)
        if kind not in _dtypes.COLUMN_TYPES:
            raise InvalidInput(
                f"type {kind!r} has no Loopwright equivalent (supported: "
                f"{', '.join(_dtypes.COLUMN_TYPES)}, tensor); import the model without a signature"
            )
        return ColumnSpec(name, kind, None, required)
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc.message}") from None
