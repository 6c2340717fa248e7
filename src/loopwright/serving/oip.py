"""The Open Inference Protocol v2 (KServe, Triton, MLServer) as JSON: requests, responses, metadata.

A request's ``inputs`` map onto the model's signature:

- column signature: one input per column (shape ``[N]`` or ``[N, 1]``), named as the column;
  or one ``[N, K]`` input holding all ``K`` columns in the signature's order (what Triton and
  MLServer clients send for a feature matrix);
- tensor signature: the one tensor (any input name), or the named tensors;
- no signature: one input is the array the model gets; several become table columns.

Outputs are named ``predict`` (or the columns of a DataFrame prediction) and
``predict_proba``; ``outputs: [{"name": "predict_proba"}]`` selects them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from ._datatypes import column_datatype, datatype_of, read_tensor, to_json_data

if TYPE_CHECKING:
    from .model import ServedModel

__all__ = ["decode_request", "encode_response", "model_metadata"]

_REQUEST_KEYS = frozenset({"id", "parameters", "inputs", "outputs"})
_INPUT_KEYS = frozenset({"name", "shape", "datatype", "parameters", "data"})


def decode_request(body: Any, model: ServedModel) -> tuple[Any, tuple[str, ...], str | None]:
    """The model input, the selected outputs and the request ``id`` of an inference request.

    Raises:
        InvalidInput: naming the malformed field (the signature is checked afterwards).
    """
    if not isinstance(body, dict):
        raise InvalidInput(
            'the inference request must be a JSON object with "inputs"; see '
            "the Open Inference Protocol's request format"
        )
    unknown = body.keys() - _REQUEST_KEYS
    if unknown:
        raise InvalidInput(
            f"the inference request has unknown fields {sorted(unknown)}; "
            f"allowed: {', '.join(sorted(_REQUEST_KEYS))}"
        )
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput(f'"id" must be a string, got {type(request_id).__name__}')
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput('"inputs" must be a non-empty list of tensors')
    arrays: dict[str, Any] = {}
    for position, spec in enumerate(inputs):
        name, array = _read_input(position, spec)
        if name in arrays:
            raise InvalidInput(f"input {name!r} appears twice")
        arrays[name] = array
    return _to_model_input(arrays, model), _selected(body.get("outputs"), model), request_id


def encode_response(
    model: ServedModel, version: str, request_id: str | None, outputs: Mapping[str, Any]
) -> dict[str, Any]:
    """The inference response: each output with its datatype, shape and flat data."""
    import numpy as np

    encoded = []
    for name, value in outputs.items():
        array = value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value)
        encoded.append(
            {
                "name": name,
                "datatype": datatype_of(array),
                "shape": list(array.shape),
                "data": to_json_data(array),
            }
        )
    response: dict[str, Any] = {"model_name": model.name, "model_version": version}
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = encoded
    return response


def model_metadata(model: ServedModel, versions: list[str]) -> dict[str, Any]:
    """OIP model metadata: inputs and outputs from the registry signature (shapes use -1)."""
    signature = model.signature
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    if signature is not None:
        for position, spec in enumerate(signature.inputs):
            inputs.append(_tensor_meta(spec, f"input-{position}"))
        if signature.outputs is not None and len(signature.outputs) == 1:
            outputs.append({**_tensor_meta(signature.outputs[0], "predict"), "name": "predict"})
        elif signature.outputs is not None:
            outputs += [_tensor_meta(s, f"output-{i}") for i, s in enumerate(signature.outputs)]
    if not outputs:
        outputs.append({"name": "predict", "datatype": "BYTES", "shape": [-1]})
    if "predict_proba" in model.outputs:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, -1]})
    return {
        "name": model.name,
        "versions": versions,
        "platform": f"loopwright_{model.loaded.flavor}",
        "inputs": inputs,
        "outputs": outputs,
    }


def _tensor_meta(spec: Any, default: str) -> dict[str, Any]:
    shape = [-1] if spec.shape is None else list(spec.shape)
    return {"name": spec.name or default, "datatype": column_datatype(spec.type), "shape": shape}


def _read_input(position: int, spec: Any) -> tuple[str, Any]:
    if not isinstance(spec, dict):
        raise InvalidInput(f"inputs[{position}] must be an object with name, shape, datatype, data")
    missing = [key for key in ("name", "shape", "datatype", "data") if key not in spec]
    if missing:
        raise InvalidInput(f"inputs[{position}] lacks {', '.join(map(repr, missing))}")
    unknown = spec.keys() - _INPUT_KEYS
    if unknown:
        raise InvalidInput(f"inputs[{position}] has unknown fields {sorted(unknown)}")
    name = spec["name"]
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"inputs[{position}].name must be a non-empty string")
    return name, read_tensor(name, spec["datatype"], spec["shape"], spec["data"])


def _to_model_input(arrays: dict[str, Any], model: ServedModel) -> Any:
    signature = model.signature
    if signature is None:
        if len(arrays) == 1:
            return next(iter(arrays.values()))
        return _columns(arrays)
    if signature.is_tensor_based:
        if len(signature.inputs) == 1 and len(arrays) == 1:
            return next(iter(arrays.values()))
        return arrays
    names = [spec.name for spec in signature.inputs]
    if len(arrays) == 1:
        ((input_name, array),) = arrays.items()
        if input_name not in names and array.ndim == 2:
            if array.shape[1] != len(names):
                shown = ", ".join(str(n) for n in names[:12]) + (" ..." if len(names) > 12 else "")
                raise InvalidInput(
                    f"input {input_name!r} has {array.shape[1]} columns (shape "
                    f"{list(array.shape)}) but {model.label} takes {len(names)}: {shown}"
                )
            import pandas as pd

            return pd.DataFrame(array, columns=names)
    return _columns(arrays)


def _columns(arrays: dict[str, Any]) -> Any:
    import pandas as pd

    columns: dict[str, Any] = {}
    rows: set[int] = set()
    for name, array in arrays.items():
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise InvalidInput(
                f"input {name!r} has shape {list(array.shape)}; a column takes shape [N] or [N, 1]"
            )
        columns[name] = array
        rows.add(len(array))
    if len(rows) > 1:
        counts = ", ".join(f"{n}: {len(a)}" for n, a in columns.items())
        raise InvalidInput(f"the input columns have different lengths ({counts}); send equal rows")
    return pd.DataFrame(columns)


def _selected(outputs: Any, model: ServedModel) -> tuple[str, ...]:
    if outputs is None:
        return ("predict",)
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise InvalidInput('"outputs" must be a list of objects with a "name"')
    return model.check_outputs([o["name"] for o in outputs])
