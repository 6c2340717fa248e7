"""Regenerate ``inference_pb2.py``, ``.pyi`` and ``inference_pb2_grpc.py`` from ``inference.proto``.

Run ``python -m loopwright.serving._grpc.generate`` (needs ``grpcio-tools``, a dev dependency)
after changing the proto, and commit the result (``--out DIR`` writes below ``DIR`` instead of
``src``). The generated modules require grpcio and
protobuf at least as new as the grpcio-tools that wrote them (they check at import): keep the
``serve`` extra's minimums in pyproject.toml at those versions.

The message descriptors go into a descriptor pool of their own rather than protobuf's default
one: the protocol's messages are named ``inference.*`` by every OIP implementation, and
``tritonclient.grpc`` (or KServe's stubs) registering the same names in the default pool in the
same process would make the second import fail with "duplicate symbol". Messages travel by
field number, so a private pool changes nothing on the wire.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["main"]

_HERE = Path(__file__).resolve().parent
_SRC = _HERE.parents[2]  # .../src, so the generated imports read loopwright.serving._grpc
_DEFAULT_POOL = "_descriptor_pool.Default().AddSerializedFile("
_OWN_POOL = "_descriptor_pool.DescriptorPool().AddSerializedFile("


def main(argv: list[str] | None = None) -> None:
    import argparse

    from grpc_tools import protoc

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=_SRC, help="root of the generated tree")
    out: Path = parser.parse_args(argv).out
    proto = (_HERE / "inference.proto").relative_to(_SRC)
    include = Path(protoc.__file__).parent / "_proto"  # protobuf's well-known types
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{_SRC}",
            f"-I{include}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            str(proto),
        ]
    )
    if status != 0:
        sys.exit(f"protoc failed on {proto} (exit status {status})")
    folder = out / proto.parent
    module = folder / "inference_pb2.py"
    text = module.read_text()
    if _DEFAULT_POOL not in text:
        sys.exit(f"{module} no longer adds its file to the default pool as expected; update me")
    module.write_text(text.replace(_DEFAULT_POOL, _OWN_POOL))
    print(f"generated {module.name}, inference_pb2.pyi and inference_pb2_grpc.py in {folder}")


if __name__ == "__main__":
    main()
