"""ONNX models (``model.onnx``), run with onnxruntime.

``save`` takes an ``onnx.ModelProto``, the bytes of one, or the path of a ``.onnx`` file, and
checks it with ``onnx.checker``. ``predict`` feeds the graph: an array (or a DataFrame's values)
to a single input, a DataFrame's columns or a dict's arrays to inputs of the same names, each cast
to the input's element type, and returns the graph's first output (the labels of classifiers
converted by skl2onnx). Without an explicit signature, one is read off the graph inputs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ....errors import InvalidInput
from ..signature import ColumnSpec, Signature
from ._protocol import defined_in, package_file

__all__ = ["MODEL_FILE", "OnnxFlavor"]

MODEL_FILE = "model.onnx"
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


class OnnxFlavor:
    """ONNX graphs, run by onnxruntime on the CPU."""

    name = "onnx"
    uses_pickle = False
    executes_code = False

    def handles(self, model: Any) -> bool:
        if isinstance(model, str | os.PathLike):
            return Path(model).suffix == ".onnx" and Path(model).is_file()
        return isinstance(model, bytes) or defined_in(model, "onnx")

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        import onnx

        proto = _proto(model)
        try:
            onnx.checker.check_model(proto)
        except onnx.checker.ValidationError as exc:
            raise InvalidInput(f"the ONNX model does not pass onnx.checker: {exc}") from None
        (folder / MODEL_FILE).write_bytes(proto.SerializeToString())
        return {
            "file": MODEL_FILE,
            "inputs": [i.name for i in _graph_inputs(proto)],
            "outputs": [o.name for o in proto.graph.output],
        }

    def load(self, folder: Path, options: Mapping[str, Any], *, trusted: bool) -> Any:
        import onnxruntime

        path = package_file(folder, options, "file", self.name)
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def predict(self, native: Any, data: Any) -> Any:
        import onnxruntime

        session = native
        if not isinstance(native, onnxruntime.InferenceSession):
            session = onnxruntime.InferenceSession(
                _proto(native).SerializeToString(), providers=["CPUExecutionProvider"]
            )
        return session.run(None, _feeds(session.get_inputs(), data))[0]

    def libraries(self) -> dict[str, str]:
        import onnx
        import onnxruntime

        return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}

    def signature(self, model: Any) -> Signature | None:
        import onnx

        specs = []
        for graph_input in _graph_inputs(_proto(model)):
            tensor = graph_input.type.tensor_type
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)
            kind = "object" if dtype.kind in "OUS" else dtype.name
            dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
            specs.append(ColumnSpec(graph_input.name, kind, dims))
        return Signature(tuple(specs)) if specs else None


def _proto(model: Any) -> Any:
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model
    try:
        if isinstance(model, bytes):
            return onnx.load_model_from_string(model)
        if isinstance(model, str | os.PathLike):
            return onnx.load_model(os.fspath(model))
    except Exception as exc:  # onnx raises DecodeError and friends from protobuf
        raise InvalidInput(f"the model is not a readable ONNX file: {exc}") from None
    raise InvalidInput(
        f"the onnx flavor takes an onnx.ModelProto, bytes or a .onnx path, not {type(model)}"
    )


def _graph_inputs(proto: Any) -> list[Any]:
    # Old opsets list initializers (weights) among the inputs; they are not fed.
    weights = {init.name for init in proto.graph.initializer}
    return [i for i in proto.graph.input if i.name not in weights]


def _feeds(inputs: list[Any], data: Any) -> dict[str, Any]:
    import numpy as np

    from .._dtypes import is_frame

    def cast(node: Any, values: Any) -> Any:
        array = np.asarray(values)
        return array.astype(_ORT_TYPES.get(node.type, array.dtype))

    if isinstance(data, Mapping):
        return {node.name: cast(node, data[node.name]) for node in inputs if node.name in data}
    if is_frame(data) and len(inputs) > 1:
        # One graph input per column (skl2onnx's layout for mixed-type tables), shaped (n, 1).
        return {node.name: cast(node, data[node.name].to_numpy().reshape(-1, 1)) for node in inputs}
    if len(inputs) != 1:
        names = [node.name for node in inputs]
        raise InvalidInput(f"the ONNX graph has inputs {names}; pass a dict or a DataFrame")
    values = data.to_numpy() if is_frame(data) else data
    return {inputs[0].name: cast(inputs[0], values)}
