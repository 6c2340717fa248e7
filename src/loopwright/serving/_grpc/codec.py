"""OIP gRPC messages to and from what serving's inference core takes and gives.

A ``ModelInferRequest`` becomes the same request object the REST route parses from JSON, so
:func:`loopwright.serving.oip.decode_request` and the datatype checks behind it judge both
protocols alike (the same input gets the same message). Typed ``contents`` arrive as the
values of the field matching the datatype; ``raw_input_contents`` are read by the binary
tensor reader of the REST route (``_binary``), which checks sizes and BYTES framing.

Outputs go back the way the inputs came: raw when the request sent raw contents (what
``tritonclient.grpc`` sends and reads), else typed contents, unless an output has no typed
field (FP16), which makes the whole response raw, as the protocol allows only one form.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...errors import InvalidInput
from .. import _binary
from .._datatypes import DATATYPES, datatype_of
from . import inference_pb2 as pb

if TYPE_CHECKING:
    from ..model import ServedModel

__all__ = ["infer_response", "metadata_response", "request_body"]

# The InferTensorContents field of each datatype (FP16 has none: raw only).
CONTENTS_FIELDS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
# Output parameters that would change what an output means; the rest (binary_data) are hints.
_REFUSED_OUTPUT_PARAMETERS = ("classification",)


def request_body(request: pb.ModelInferRequest) -> dict[str, Any]:
    """The OIP request object (as REST's JSON) of ``request``, input values decoded.

    Raises:
        InvalidInput: contents in the wrong field, raw and typed contents mixed, a raw entry
            count that differs from the inputs', or raw bytes that do not fit the datatype.
    """
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(
            f"raw_input_contents has {len(raw)} entries but the request has "
            f"{len(request.inputs)} inputs; give one entry per input, in the inputs' order"
        )
    inputs: list[dict[str, Any]] = []
    for position, tensor in enumerate(request.inputs):
        if tensor.datatype not in DATATYPES:
            raise InvalidInput(
                f"input {tensor.name!r} has datatype {tensor.datatype!r}; use one of "
                f"{', '.join(DATATYPES)}"
            )
        spec: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
        }
        if raw:
            if tensor.contents.ByteSize():
                raise InvalidInput(
                    f"input {tensor.name!r} has contents although the request sends "
                    "raw_input_contents; send every input one way"
                )
            spec["parameters"] = {"binary_data_size": len(raw[position])}
        else:
            spec["data"] = _typed_values(tensor)
        inputs.append(spec)
    body: dict[str, Any] = {"inputs": inputs}
    if raw:
        _binary.attach_inputs(body, b"".join(raw))
    if request.id:
        body["id"] = request.id
    if request.outputs:
        body["outputs"] = [_requested(output) for output in request.outputs]
    return body


def infer_response(
    model: ServedModel, request_id: str, outputs: Mapping[str, Any], *, raw: bool
) -> pb.ModelInferResponse:
    """The response carrying ``outputs``; ``raw``: in ``raw_output_contents``."""
    import numpy as np

    arrays = [
        (name, value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value))
        for name, value in outputs.items()
    ]
    datatypes = [datatype_of(array) for _, array in arrays]
    raw = raw or any(datatype not in CONTENTS_FIELDS for datatype in datatypes)
    response = pb.ModelInferResponse(
        model_name=model.name, model_version=model.version_name, id=request_id
    )
    for (name, array), datatype in zip(arrays, datatypes, strict=True):
        tensor = response.outputs.add(name=name, datatype=datatype, shape=array.shape)
        if datatype == "BYTES":
            elements = _bytes_elements(array)
            if raw:
                response.raw_output_contents.append(
                    b"".join(struct.pack("<I", len(e)) + e for e in elements)
                )
            else:
                tensor.contents.bytes_contents.extend(elements)
        elif raw:
            little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
            response.raw_output_contents.append(little.tobytes())
        else:
            getattr(tensor.contents, CONTENTS_FIELDS[datatype]).extend(array.reshape(-1).tolist())
    return response


def metadata_response(metadata: Mapping[str, Any]) -> pb.ModelMetadataResponse:
    """``oip.model_metadata``'s answer as the gRPC message."""
    tensor = pb.ModelMetadataResponse.TensorMetadata
    return pb.ModelMetadataResponse(
        name=metadata["name"],
        versions=metadata["versions"],
        platform=metadata["platform"],
        inputs=[tensor(**spec) for spec in metadata["inputs"]],
        outputs=[tensor(**spec) for spec in metadata["outputs"]],
    )


def _typed_values(tensor: pb.ModelInferRequest.InferInputTensor) -> list[Any]:
    field = CONTENTS_FIELDS.get(tensor.datatype)
    used = [descriptor.name for descriptor, _ in tensor.contents.ListFields()]
    label = f"input {tensor.name!r}"
    if field is None:
        raise InvalidInput(
            f"{label} is {tensor.datatype}, which has no typed contents field; send its "
            "values in raw_input_contents"
        )
    wrong = [name for name in used if name != field]
    if wrong:
        raise InvalidInput(
            f"{label} is declared {tensor.datatype} but its values are in contents.{wrong[0]}; "
            f"put them in contents.{field}"
        )
    values = getattr(tensor.contents, field)
    if field != "bytes_contents":
        return list(values)
    try:
        return [value.decode("utf-8") for value in values]
    except UnicodeDecodeError:
        raise InvalidInput(f"{label} has a BYTES element that is not UTF-8") from None


def _requested(output: pb.ModelInferRequest.InferRequestedOutputTensor) -> dict[str, Any]:
    for name in _REFUSED_OUTPUT_PARAMETERS:
        if name in output.parameters:
            raise InvalidInput(
                f"output {output.name!r} asks for {name!r}, which this server does not "
                "support; request the output without it"
            )
    return {"name": output.name}


def _bytes_elements(array: Any) -> list[bytes]:
    if array.dtype.kind == "M":
        array = array.astype(str)
    return [
        value if isinstance(value, bytes) else str(value).encode("utf-8")
        for value in array.reshape(-1).tolist()
    ]
