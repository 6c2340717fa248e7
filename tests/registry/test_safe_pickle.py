"""Pickles are read in one guarded place, and only when the caller trusts them."""

from __future__ import annotations

import json
import os
import pickle
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import loopwright
from loopwright.errors import PermissionDenied, UnsafePath
from loopwright.registry.packaging._safe_pickle import load_pickle
from loopwright.registry.packaging._trust import UntrustedModel
from loopwright.registry.packaging._writer import PackageContent, write_package
from loopwright.registry.packaging.package import MANIFEST_FILE, load_package

SOURCE = Path(loopwright.__file__).parent
GUARDED = SOURCE / "registry" / "packaging" / "_safe_pickle.py"
# Calls that unpickle (or unpack archives without path checks) and may appear only in GUARDED.
FORBIDDEN = re.compile(
    r"\b(?:pickle|cloudpickle|dill|joblib)\.loads?\b"
    r"|\bfrom\s+(?:pickle|cloudpickle|dill|joblib)\s+import\s+[^\n]*\bloads?\b"
    r"|\bUnpickler\b|\bread_pickle\b|allow_pickle\s*=\s*True|\bextractall\b"
)


class _Marker:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def _malicious_pickle(folder: Path) -> tuple[Path, Path]:
    marker = folder / "pwned"
    path = folder / "model.pkl"
    path.write_bytes(pickle.dumps(_Marker(marker)))
    return path, marker


def test_a_malicious_pickle_is_refused_unread_without_trust(tmp_path: Path) -> None:
    path, marker = _malicious_pickle(tmp_path)
    with pytest.raises(PermissionDenied, match="trusted=True"):
        load_pickle(path, trusted=False)
    assert not marker.exists()


def test_trusted_means_unpickled_which_runs_the_payload(tmp_path: Path) -> None:
    """Why the guard exists: with trusted=True the pickle's code really runs."""
    path, marker = _malicious_pickle(tmp_path)
    load_pickle(path, trusted=True)
    assert marker.exists()


def _pickle_package(tmp_path: Path, *, claims_pickle: bool) -> tuple[Path, Path]:
    source, marker = _malicious_pickle(tmp_path)

    def build(folder: Path) -> PackageContent:
        (folder / "model.pkl").write_bytes(source.read_bytes())
        return PackageContent(
            flavor="sklearn",
            flavor_options={"serialization": "pickle", "file": "model.pkl"},
            signature=None,
            input_example=None,
            libraries={},
            uses_pickle=claims_pickle,
            executes_code=False,
        )

    write_package(tmp_path / "package", build)
    return tmp_path / "package", marker


@pytest.mark.parametrize("claims_pickle", [True, False], ids=["honest", "lying-manifest"])
def test_a_malicious_package_is_refused_without_trust(tmp_path: Path, claims_pickle: bool) -> None:
    package, marker = _pickle_package(tmp_path, claims_pickle=claims_pickle)
    with pytest.raises(UntrustedModel, match="trusted=True") as caught:
        load_package(package)
    assert isinstance(caught.value, PermissionDenied)
    assert caught.value.code == "UNTRUSTED_MODEL"
    assert not marker.exists()


def test_the_refusal_explains_the_risk_and_the_opt_in(tmp_path: Path) -> None:
    package, _ = _pickle_package(tmp_path, claims_pickle=True)
    with pytest.raises(UntrustedModel) as caught:
        load_package(package)
    message = caught.value.message
    assert "unpickles data" in message and "arbitrary code" in message
    assert "trusted=True" in message and "skops" in message


def test_a_manifest_pointing_the_pickle_outside_the_package_is_refused(tmp_path: Path) -> None:
    package, marker = _pickle_package(tmp_path, claims_pickle=True)
    document = json.loads((package / MANIFEST_FILE).read_bytes())
    document["flavor_options"]["file"] = "../model.pkl"
    (package / MANIFEST_FILE).write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(UnsafePath, match=r"'\.\./model\.pkl'"):
        load_package(package, trusted=True)
    assert not marker.exists()


def _offences() -> list[str]:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        if path == GUARDED:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if FORBIDDEN.search(line):
                found.append(f"{path.relative_to(SOURCE)}:{number}: {line.strip()}")
    return found


def test_no_pickle_loader_outside_the_guarded_module() -> None:
    assert GUARDED.is_file()
    assert FORBIDDEN.search(GUARDED.read_text(encoding="utf-8"))  # the pattern does match
    assert _offences() == [], (
        "read pickles only through registry/packaging/_safe_pickle.load_pickle"
    )


@pytest.mark.parametrize(
    "line",
    [
        "model = pickle.load(f)",
        "x = cloudpickle.loads(data)",
        "joblib.load('m.joblib')",
        "from pickle import loads as l",
        "tar.extractall(dest)",
        "np.load(p, allow_pickle=True)",
        "pd.read_pickle(p)",
        "pickle.Unpickler(f).load()",
    ],
)
def test_the_scan_catches_each_forbidden_form(line: str) -> None:
    assert FORBIDDEN.search(line)


def test_importing_the_registry_packaging_loads_no_model_library() -> None:
    heavy = ["numpy", "pandas", "sklearn", "skops", "xgboost", "lightgbm", "onnx", "onnxruntime"]
    heavy += ["mlflow", "yaml", "cloudpickle", "pickle"]
    script = (
        "import sys\n"
        "import loopwright.registry.packaging.package\n"
        "import loopwright.registry.packaging.mlflow_import\n"
        "from loopwright.registry.packaging.flavors import (\n"
        "    available_flavors, flavor_for, get_flavor\n"
        ")\n"
        "for name in available_flavors(): get_flavor(name).handles(object())\n"
        f"print([m for m in {heavy!r} if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
