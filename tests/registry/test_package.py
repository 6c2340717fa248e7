"""Model packages: the manifest as untrusted input, atomic saving, verification, loading."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from blake3 import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

from loopwright.errors import (
    AlreadyExists,
    IntegrityError,
    InvalidInput,
    InvalidModelPackage,
    NotFound,
)
from loopwright.registry.packaging.flavors import register_flavor, unregister_flavor
from loopwright.registry.packaging.package import (
    MANIFEST_FILE,
    FileEntry,
    PackageManifest,
    load_package,
    read_manifest,
    save_model,
    verify_package,
)
from loopwright.registry.packaging.signature import ColumnSpec, Signature, SignatureError

sklearn_linear = pytest.importorskip("sklearn.linear_model")

X = pd.DataFrame({"age": [20, 35, 50, 65], "income": [1.0, 2.5, 3.0, 4.5]})
Y = np.array([0, 0, 1, 1])
HASH = "0" * 64


def _valid_document() -> dict[str, Any]:
    return {
        "format": 1,
        "flavor": "sklearn",
        "flavor_options": {"serialization": "skops", "file": "model.skops"},
        "signature": {
            "inputs": [{"name": "age", "type": "long", "shape": None, "required": True}],
            "outputs": None,
        },
        "input_example": "input_example.json",
        "python": "3.11.7",
        "libraries": {"scikit-learn": "1.9.1"},
        "uses_pickle": False,
        "executes_code": False,
        "created_at": 1_700_000_000_000,
        "files": {
            "model.skops": {"hash": HASH, "size": 10},
            "input_example.json": {"hash": HASH, "size": 2},
        },
    }


def _parse(document: Any) -> PackageManifest:
    return PackageManifest.from_json(json.dumps(document).encode())


@pytest.fixture
def classifier() -> Any:
    return sklearn_linear.LogisticRegression().fit(X, Y)


def test_a_valid_manifest_parses_and_keeps_its_bytes_for_the_hash() -> None:
    raw = json.dumps(_valid_document()).encode()
    manifest = PackageManifest.from_json(raw)
    assert manifest.files["model.skops"] == FileEntry(HASH, 10)
    assert manifest.signature == Signature((ColumnSpec("age", "long"),))
    assert manifest.to_json() == raw
    assert manifest.hash == blake3(raw).hexdigest()
    rebuilt = PackageManifest.from_json(json.dumps(manifest.to_dict()).encode())
    assert rebuilt == manifest


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "not valid UTF-8 JSON"),
        (b"\xff\xfe", "not valid UTF-8 JSON"),
        (b"[]", "must hold a JSON object"),
        (b'{"format": NaN}', "NaN, which is not JSON"),
        (b'{"format": 1, "format": 1}', r"repeats the keys \['format'\]"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid UTF-8 JSON"),
    ],
)
def test_malformed_json_is_refused(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidModelPackage, match=message):
        PackageManifest.from_json(raw)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("format", 2, "field 'format' is 2, but this Loopwright reads format 1"),
        ("format", True, "field 'format'"),
        ("format", "1", "field 'format'"),
        ("flavor", 1, "field 'flavor' must be a string, not an integer"),
        ("flavor", "Bad Name", "field 'flavor' is 'Bad Name', not a flavor name"),
        ("flavor_options", [], "field 'flavor_options' must be an object, not a list"),
        ("signature", "x", "field 'signature' must be an object"),
        ("signature", {"inputs": [{"name": "a", "type": "dbl"}]}, "'dbl' is unknown"),
        ("input_example", 3, "field 'input_example' must be a string"),
        ("input_example", "other.json", "names 'other.json', which 'files' lacks"),
        ("python", 3.11, "field 'python' must be a string, not a number"),
        ("libraries", [], "field 'libraries' must be an object"),
        ("libraries", {"numpy": 2}, "'libraries' gives 'numpy' a non-string version"),
        ("uses_pickle", "false", "field 'uses_pickle' must be true or false, not a string"),
        ("executes_code", 0, "field 'executes_code' must be true or false"),
        ("created_at", True, "field 'created_at' must be an integer, not a boolean"),
        ("created_at", 1.5, "field 'created_at' must be an integer"),
        ("created_at", -1, "field 'created_at' is negative"),
        ("files", [], "field 'files' must be an object, not a list"),
        ("files", {"m": "x"}, "entry 'm' must be an object with hash and size"),
        ("files", {"m": {"hash": "A" * 64, "size": 1}}, "not 64 lowercase hex"),
        ("files", {"m": {"hash": HASH, "size": -1}}, "size that is not an integer >= 0"),
        ("files", {"m": {"hash": HASH, "size": True}}, "size that is not an integer"),
        ("files", {"m": {"hash": HASH, "size": 1, "mode": 1}}, "with hash and size"),
    ],
)
def test_wrong_types_are_refused_naming_the_field(field: str, value: Any, message: str) -> None:
    document = _valid_document()
    document[field] = value
    if field == "files":
        document["input_example"] = None
    with pytest.raises(InvalidModelPackage, match=message) as caught:
        _parse(document)
    assert isinstance(caught.value, InvalidInput)
    assert "rebuild it" in caught.value.message


def test_unknown_and_missing_fields_are_refused() -> None:
    document = _valid_document()
    document["run_me"] = "rm -rf /"
    with pytest.raises(InvalidModelPackage, match=r"unknown fields \['run_me'\]"):
        _parse(document)
    document = _valid_document()
    del document["files"]
    with pytest.raises(InvalidModelPackage, match=r"lacks the fields \['files'\]"):
        _parse(document)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../outside.bin", "'..' segments"),
        ("model/../../x", "'..' segments"),
        ("/etc/passwd", "absolute paths"),
        ("model\\weights.bin", "backslashes"),
        ("C:/weights.bin", "Windows drive"),
        ("a//b", "not in normal form"),
        ("./model.skops", "not in normal form"),
        ("~/x", "home folder"),
        (MANIFEST_FILE, "names the manifest itself"),
        ("model%2f..%2fx", "percent-escape"),
    ],
)
def test_unsafe_file_paths_are_refused(path: str, message: str) -> None:
    document = _valid_document()
    document["files"] = {path: {"hash": HASH, "size": 1}}
    document["input_example"] = None
    with pytest.raises(InvalidModelPackage, match=message) as caught:
        _parse(document)
    assert "field 'files'" in caught.value.message
    document = _valid_document()
    document["input_example"] = path
    with pytest.raises(InvalidModelPackage, match="field 'input_example'"):
        _parse(document)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(_valid_document())), _json)
def test_any_field_value_parses_or_is_refused_cleanly(field: str, value: Any) -> None:
    document = _valid_document()
    document[field] = value
    with contextlib.suppress(InvalidModelPackage):
        _parse(document)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_refused_cleanly(raw: bytes) -> None:
    with contextlib.suppress(InvalidModelPackage):
        PackageManifest.from_json(raw)


def test_save_model_writes_a_verifiable_package(tmp_path: Path, classifier: Any) -> None:
    manifest = save_model(classifier, tmp_path / "pkg", input_example=X.head(2))
    assert manifest == read_manifest(tmp_path / "pkg") == verify_package(tmp_path / "pkg")
    assert manifest.hash == blake3((tmp_path / "pkg" / MANIFEST_FILE).read_bytes()).hexdigest()
    assert manifest.flavor == "sklearn" and not manifest.needs_trust
    assert set(manifest.libraries) >= {"scikit-learn", "skops", "loopwright"}
    assert manifest.signature == Signature(
        (ColumnSpec("age", "long"), ColumnSpec("income", "double")),
        (ColumnSpec(None, "int64", (-1,)),),
    )
    example = json.loads((tmp_path / "pkg" / "input_example.json").read_bytes())
    assert example == {"columns": ["age", "income"], "data": [[20, 1.0], [35, 2.5]]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg", "work"]  # no temporary folder


def test_loaded_models_expose_the_native_model_and_metadata(
    tmp_path: Path, classifier: Any
) -> None:
    manifest = save_model(classifier, tmp_path / "pkg", input_example=X.head(2))
    loaded = load_package(tmp_path / "pkg")
    assert type(loaded.raw) is type(classifier)
    assert loaded.manifest == manifest and loaded.signature == manifest.signature
    assert loaded.metadata["hash"] == manifest.hash and loaded.metadata["flavor"] == "sklearn"
    assert repr(loaded) == f"LoadedModel(flavor='sklearn', hash='{manifest.hash[:12]}')"
    np.testing.assert_allclose(loaded.predict_proba(X), classifier.predict_proba(X))
    pd.testing.assert_frame_equal(loaded.input_example, X.head(2))
    with pytest.raises(SignatureError, match="missing column 'income'"):
        loaded.predict_proba(X[["age"]])
    regression = sklearn_linear.LinearRegression().fit(X, Y)
    save_model(regression, tmp_path / "reg", signature=None)
    plain = load_package(tmp_path / "reg")
    assert not hasattr(plain, "predict_proba")
    assert plain.signature is None and plain.input_example is None
    np.testing.assert_allclose(plain.predict(X), regression.predict(X))


def test_save_model_refuses_a_non_empty_folder_but_takes_an_empty_one(
    tmp_path: Path, classifier: Any
) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(AlreadyExists, match="not an empty folder"):
        save_model(classifier, tmp_path / "busy")
    assert os.listdir(tmp_path / "busy") == ["notes.txt"]
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(AlreadyExists):
        save_model(classifier, tmp_path / "file")
    (tmp_path / "empty").mkdir()
    save_model(classifier, tmp_path / "empty")
    verify_package(tmp_path / "empty")


class _Exploding:
    """A flavor that fails half-way through writing, like a crash would."""

    name = "exploding"
    uses_pickle = False
    executes_code = False

    def handles(self, model: Any) -> bool:
        return isinstance(model, str) and model == "boom"

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        (folder / "half-written.bin").write_bytes(b"\0" * 100)
        raise RuntimeError("disk full")

    def load(self, folder: Path, options: Any, *, trusted: bool) -> Any:
        raise AssertionError("never loaded")

    def predict(self, native: Any, data: Any) -> Any:
        raise AssertionError("never called")

    def libraries(self) -> dict[str, str]:
        return {}

    def signature(self, model: Any) -> Signature | None:
        return None


@pytest.fixture
def exploding() -> Iterator[None]:
    register_flavor(_Exploding())
    yield
    unregister_flavor("exploding")


@pytest.mark.usefixtures("exploding")
def test_a_failed_save_leaves_no_half_package(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="disk full"):
        save_model("boom", tmp_path / "out" / "pkg")
    assert list((tmp_path / "out").iterdir()) == []


def test_flavor_choice_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"no model flavor 'nope'; available: .*sklearn"):
        save_model(object(), tmp_path / "a", flavor="nope")
    with pytest.raises(InvalidInput, match=r"no model flavor handles object .* pyfunc"):
        save_model(object(), tmp_path / "b")


def test_signature_arguments(tmp_path: Path, classifier: Any) -> None:
    explicit = Signature((ColumnSpec("age", "long"), ColumnSpec("income", "double")))
    manifest = save_model(classifier, tmp_path / "a", signature=explicit, input_example=X)
    assert manifest.signature == explicit
    with pytest.raises(SignatureError, match=r"checking the input example.*missing column 'x'"):
        save_model(
            classifier,
            tmp_path / "b",
            signature=Signature((ColumnSpec("x", "double"),)),
            input_example=X,
        )
    with pytest.raises(InvalidInput, match="predict failed on the input example"):
        save_model(classifier, tmp_path / "c", input_example=X[["age"]])
    with pytest.raises(InvalidInput, match="signature must be a Signature"):
        save_model(classifier, tmp_path / "d", signature="guess")  # type: ignore[arg-type]
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_code_paths_and_requirements_are_packaged(tmp_path: Path, classifier: Any) -> None:
    helpers = tmp_path / "helpers"
    (helpers / "__pycache__").mkdir(parents=True)
    (helpers / "__init__.py").write_text("X = 1\n", encoding="utf-8")
    (helpers / "__pycache__" / "junk.pyc").write_bytes(b"junk")
    (tmp_path / "tool.py").write_text("Y = 2\n", encoding="utf-8")
    manifest = save_model(
        classifier,
        tmp_path / "pkg",
        code_paths=[helpers, tmp_path / "tool.py"],
        pip_requirements=["scikit-learn==1.9.1", "  skops  "],
    )
    assert set(manifest.files) == {
        "model.skops",
        "code/helpers/__init__.py",
        "code/tool.py",
        "requirements.txt",
    }
    assert (tmp_path / "pkg" / "requirements.txt").read_text() == "scikit-learn==1.9.1\nskops\n"
    with pytest.raises(InvalidInput, match="does not exist"):
        save_model(classifier, tmp_path / "other", code_paths=[tmp_path / "missing.py"])


def test_verification_names_missing_changed_and_linked_files(
    tmp_path: Path, classifier: Any
) -> None:
    package = tmp_path / "pkg"
    save_model(classifier, package, input_example=X.head(2))
    example = package / "input_example.json"
    original = example.read_bytes()
    example.write_bytes(original + b" ")
    with pytest.raises(
        IntegrityError, match=r"'input_example.json' does not match.*found \d+ bytes"
    ):
        verify_package(package)
    example.unlink()
    with pytest.raises(IntegrityError, match=r"'input_example.json' is missing"):
        load_package(package)
    example.symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_bytes(original)
    with pytest.raises(IntegrityError, match=r"'input_example.json' is missing or not a regular"):
        verify_package(package)
    example.unlink()
    example.write_bytes(original)
    (package / "link").symlink_to(tmp_path)
    with pytest.raises(IntegrityError, match="'link' is a symbolic link"):
        verify_package(package)
    (package / "link").unlink()
    (package / "empty-dir").mkdir()
    with pytest.raises(IntegrityError, match="'empty-dir' is not listed"):
        verify_package(package)


def test_a_folder_without_manifest_is_not_a_package(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"no loopwright-model.json.*convert_mlflow_model"):
        load_package(tmp_path)


def test_an_unknown_flavor_in_a_manifest_is_reported(tmp_path: Path, classifier: Any) -> None:
    package = tmp_path / "pkg"
    save_model(classifier, package)
    document = json.loads((package / MANIFEST_FILE).read_bytes())
    document["flavor"] = "tensorflow"
    (package / MANIFEST_FILE).write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(NotFound, match=r"no model flavor 'tensorflow'.*entry-point group"):
        load_package(package)
