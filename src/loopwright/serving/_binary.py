"""Triton's binary tensor data extension to OIP REST (what ``tritonclient.http`` sends by default).

A request with the header ``Inference-Header-Content-Length: N`` is N bytes of JSON followed by
the raw data of every input whose ``parameters`` give ``binary_data_size`` (in input order,
little-endian; ``BYTES`` elements as a 4-byte length and the bytes). Outputs requested with
``parameters: {"binary_data": true}`` (or all of them, with the request parameter
``binary_data_output``) come back the same way: their JSON carries ``binary_data_size``
instead of ``data``, and the response header gives the JSON's length.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

from .._numbers import is_number
from ..errors import InvalidInput
from ._datatypes import NUMPY_DTYPES, datatype_of

__all__ = ["HEADER", "attach_inputs", "binary_outputs", "encode_binary", "split_body"]

HEADER = "inference-header-content-length"


def split_body(raw: bytes, header: str) -> tuple[Any, bytes]:
    """The JSON part of a binary request, parsed, and the binary data after it."""
    if not is_number(header) or int(header) > len(raw):
        raise InvalidInput(
            f"Inference-Header-Content-Length {header!r} is not a length within the body "
            f"({len(raw)} bytes)"
        )
    size = int(header)
    try:
        return json.loads(raw[:size]), raw[size:]
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the JSON part of the request is not valid JSON: {exc}") from None


def attach_inputs(body: Any, data: bytes) -> None:
    """Put each binary input's values into its ``data`` field (``body`` is changed in place)."""
    import numpy as np

    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list):
        return  # decode_request names the problem
    offset = 0
    for position, spec in enumerate(inputs):
        parameters = spec.get("parameters") if isinstance(spec, dict) else None
        if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
            continue
        size = parameters["binary_data_size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidInput(f"inputs[{position}].parameters.binary_data_size must be >= 0")
        if offset + size > len(data):
            raise InvalidInput(
                f"inputs[{position}] declares {size} bytes of binary data but only "
                f"{len(data) - offset} remain in the body"
            )
        chunk = data[offset : offset + size]
        offset += size
        datatype = spec.get("datatype")
        if datatype == "BYTES":
            spec["data"] = _read_bytes(chunk, position)
        elif datatype in NUMPY_DTYPES:
            dtype = np.dtype(NUMPY_DTYPES[datatype]).newbyteorder("<")
            if size % dtype.itemsize:
                raise InvalidInput(
                    f"inputs[{position}] has {size} bytes, not a whole number of {datatype} values"
                )
            spec["data"] = np.frombuffer(chunk, dtype=dtype).astype(dtype.newbyteorder("="))
        else:
            raise InvalidInput(f"inputs[{position}] has datatype {datatype!r}")
    if offset != len(data):
        raise InvalidInput(
            f"the body has {len(data) - offset} bytes of binary data that no input declares"
        )


def binary_outputs(body: Any) -> set[str] | bool:
    """The outputs to send as binary data: a set of names, or ``True`` for all of them."""
    parameters = body.get("parameters") if isinstance(body, dict) else None
    if isinstance(parameters, dict) and parameters.get("binary_data_output") is True:
        return True
    outputs = body.get("outputs") if isinstance(body, dict) else None
    if not isinstance(outputs, list):
        return set()
    return {
        o["name"]
        for o in outputs
        if isinstance(o, dict)
        and isinstance(o.get("parameters"), dict)
        and o["parameters"].get("binary_data") is True
    }


def encode_binary(
    payload: dict[str, Any], outputs: Mapping[str, Any], binary: set[str] | bool
) -> tuple[bytes, int]:
    """The response body with the ``binary`` outputs' data after the JSON, and the JSON length."""
    import numpy as np

    chunks: list[bytes] = []
    for entry in payload["outputs"]:
        if isinstance(binary, set) and entry["name"] not in binary:
            continue
        value = outputs[entry["name"]]
        array = value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value)
        if datatype_of(array) == "BYTES":
            chunk = b"".join(_length_prefixed(v) for v in array.reshape(-1).tolist())
        else:
            chunk = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        del entry["data"]
        entry["parameters"] = {"binary_data_size": len(chunk)}
        chunks.append(chunk)
    header = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return header + b"".join(chunks), len(header)


def _read_bytes(chunk: bytes, position: int) -> list[str]:
    values: list[str] = []
    offset = 0
    while offset < len(chunk):
        if offset + 4 > len(chunk):
            raise InvalidInput(f"inputs[{position}] has a truncated BYTES element length")
        (length,) = struct.unpack_from("<I", chunk, offset)
        offset += 4
        if offset + length > len(chunk):
            raise InvalidInput(f"inputs[{position}] has a BYTES element past the data's end")
        try:
            values.append(chunk[offset : offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInput(
                f"inputs[{position}] has a BYTES element that is not UTF-8"
            ) from None
        offset += length
    return values


def _length_prefixed(value: Any) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode("utf-8")
    return struct.pack("<I", len(data)) + data
