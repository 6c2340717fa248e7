"""The conformance checks every model flavor passes, for built-in and third-party flavors alike.

A flavor is checked through cases: each :class:`FlavorCase` saves one small real model as a
package and says what the original model predicts. Every check then works on a fresh copy of
that package and asserts that it round-trips its predictions, lists and hashes every file,
detects a flipped byte or a planted file, rejects input that breaks the signature, and refuses
to load without ``trusted=True`` whenever loading unpickles data or imports packaged code.

With pytest, :func:`parametrize_with_checks` makes one test per case and check (as
scikit-learn's ``parametrize_with_checks`` does for estimators); :func:`check_flavor` runs every
check of one case in a plain function. The checks need numpy, pandas and blake3; pytest is only
imported by :func:`parametrize_with_checks`.

Example, in a flavor package's tests::

    from loopwright.registry.packaging.flavors import register_flavor
    from loopwright.registry.packaging.flavors.testing import (
        FlavorCase, SavedModel, parametrize_with_checks,
    )
    from loopwright.registry.packaging.package import save_model

    register_flavor(MyFlavor())
    DATA = pandas.DataFrame({"a": [0.1, 0.7, 0.3], "b": [1.0, 2.0, 3.0]})

    def make(folder):
        model = MyModel().fit(DATA)
        save_model(model, folder, input_example=DATA.head(2))
        return SavedModel(folder, model.predict(DATA))

    @parametrize_with_checks([FlavorCase("my-model", "my_flavor", make, DATA)])
    def test_my_flavor(case, check, tmp_path):
        check(case, tmp_path)
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ....errors import IntegrityError, PermissionDenied, SignatureError
from ..package import MANIFEST_FILE, load_package, read_manifest, verify_package
from . import get_flavor

if TYPE_CHECKING:
    from pytest import MarkDecorator

__all__ = [
    "CHECKS",
    "PLANTED_FILES",
    "Check",
    "FlavorCase",
    "FlavorCheck",
    "SavedModel",
    "check_a_flipped_byte_is_detected",
    "check_a_planted_file_is_detected",
    "check_flavor",
    "check_manifest_lists_and_hashes_every_file",
    "check_round_trip",
    "check_the_signature_rejects_bad_input",
    "check_unsafe_packages_need_trust",
    "parametrize_with_checks",
]

#: Files a check plants in a package (at the top, in the code folder, in new folders).
PLANTED_FILES = ("extra.py", "code/sitecustomize.py", "nested/dir/x.bin")


@dataclass(frozen=True)
class SavedModel:
    """A saved package and what the original model predicts on its case's data.

    Attributes:
        package: the package folder.
        expected: the original model's predictions on the case's ``data``.
    """

    package: Path
    expected: Any


@dataclass(frozen=True)
class FlavorCase:
    """One model of a flavor to check.

    Attributes:
        id: a short name for test ids (``"sklearn-forest"``).
        flavor: the flavor the package must record.
        make: saves the model as a package into the (new) folder it is given, with an input
            example of ``data``'s columns, and returns the package and the expected predictions.
        data: a pandas DataFrame of at least two numeric columns to predict on.
        needs_trust: loading the package unpickles data or imports code it ships.
    """

    id: str
    flavor: str
    make: Callable[[Path], SavedModel] = field(repr=False)
    data: Any = field(repr=False)
    needs_trust: bool = False


#: A check: the case, a fresh copy of its package, and an empty scratch folder.
Check = Callable[[FlavorCase, SavedModel, Path], None]


def check_round_trip(case: FlavorCase, saved: SavedModel, scratch: Path) -> None:
    """The loaded model predicts as the original, whatever the column order and extras."""
    loaded = load_package(saved.package, trusted=case.needs_trust)
    assert loaded.flavor == case.flavor, f"saved as {loaded.flavor!r}, not {case.flavor!r}"
    _assert_same(loaded.predict(case.data), saved.expected)
    reordered = case.data[list(reversed(case.data.columns))].assign(unused="ignored")
    _assert_same(loaded.predict(reordered), saved.expected)
    if hasattr(loaded, "predict_proba"):
        assert len(loaded.predict_proba(case.data)) == len(case.data)


def check_manifest_lists_and_hashes_every_file(
    case: FlavorCase, saved: SavedModel, scratch: Path
) -> None:
    """The manifest lists every file of the package with its BLAKE3 hash and size."""
    from blake3 import blake3

    manifest = read_manifest(saved.package)
    on_disk = {
        path.relative_to(saved.package).as_posix(): path
        for path in saved.package.rglob("*")
        if path.is_file() and path.name != MANIFEST_FILE
    }
    assert set(manifest.files) == set(on_disk), "the manifest does not list the files on disk"
    for relative, entry in manifest.files.items():
        content = on_disk[relative].read_bytes()
        assert (entry.hash, entry.size) == (blake3(content).hexdigest(), len(content)), relative
    manifest_bytes = (saved.package / MANIFEST_FILE).read_bytes()
    assert manifest.hash == blake3(manifest_bytes).hexdigest()
    assert manifest.flavor == case.flavor
    assert verify_package(saved.package) == manifest


def check_a_flipped_byte_is_detected(case: FlavorCase, saved: SavedModel, scratch: Path) -> None:
    """Changing one byte of any listed file makes loading fail, naming the file."""
    for number, relative in enumerate(read_manifest(saved.package).files):
        copy = scratch / f"flipped-{number}"
        shutil.copytree(saved.package, copy)
        target = copy / relative
        content = bytearray(target.read_bytes())
        if not content:
            continue  # an empty file has no byte to flip; its hash still pins it
        content[len(content) // 2] ^= 0x01
        target.write_bytes(bytes(content))
        with _raises(IntegrityError, re.escape(relative.split("/")[-1])):
            load_package(copy, trusted=True)


def check_a_planted_file_is_detected(case: FlavorCase, saved: SavedModel, scratch: Path) -> None:
    """A file the manifest does not list makes loading fail, wherever it is planted."""
    for number, planted in enumerate(PLANTED_FILES):
        copy = scratch / f"planted-{number}"
        shutil.copytree(saved.package, copy)
        target = copy / planted
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("print('planted')\n", encoding="utf-8")
        with _raises(IntegrityError, "not listed"):
            load_package(copy, trusted=True)


def check_the_signature_rejects_bad_input(
    case: FlavorCase, saved: SavedModel, scratch: Path
) -> None:
    """Input missing a column, or with a number column sent as text, is refused before predict."""
    loaded = load_package(saved.package, trusted=case.needs_trust)
    signature = loaded.signature
    assert signature is not None, "the package has no signature: save it with an input_example"
    assert not signature.is_tensor_based, "this check needs a column-based signature"
    columns = [spec for spec in signature.inputs if spec.name in case.data.columns]
    assert columns, "the signature names none of the case's data columns"
    missing = columns[0].name
    with _raises(SignatureError, f"missing column {missing!r}"):
        loaded.predict(case.data.drop(columns=missing))
    numbers = [spec for spec in columns if spec.type in {"integer", "long", "float", "double"}]
    assert numbers, "the case's data needs a number column"
    mistyped = numbers[-1]
    with _raises(SignatureError, f"column {mistyped.name!r} expects {mistyped.type}, got string"):
        loaded.predict(case.data.assign(**{str(mistyped.name): "text"}))


def check_unsafe_packages_need_trust(case: FlavorCase, saved: SavedModel, scratch: Path) -> None:
    """Packages that unpickle or import code load only with ``trusted=True``; others honour it."""
    manifest = read_manifest(saved.package)
    flavor = get_flavor(case.flavor)
    if case.needs_trust:
        assert manifest.uses_pickle or manifest.executes_code, "the manifest declares no risk"
        with _raises(PermissionDenied, "trusted=True"):
            load_package(saved.package)
        # The flavor refuses on its own too, whatever the manifest claims.
        with _raises(PermissionDenied, "trusted=True"):
            flavor.load(saved.package, manifest.flavor_options, trusted=False)
        return
    assert not (manifest.uses_pickle or manifest.executes_code), "mark the case needs_trust"
    assert not (flavor.uses_pickle or flavor.executes_code), "mark the case needs_trust"
    document = json.loads((saved.package / MANIFEST_FILE).read_bytes())
    document["uses_pickle"] = True  # the manifest's word is honoured even for safe flavors
    (saved.package / MANIFEST_FILE).write_text(json.dumps(document), encoding="utf-8")
    with _raises(PermissionDenied, "unpickles data"):
        load_package(saved.package)


CHECKS: tuple[Check, ...] = (
    check_round_trip,
    check_manifest_lists_and_hashes_every_file,
    check_a_flipped_byte_is_detected,
    check_a_planted_file_is_detected,
    check_the_signature_rejects_bad_input,
    check_unsafe_packages_need_trust,
)


def check_flavor(case: FlavorCase, workdir: Path, checks: Sequence[Check] = CHECKS) -> None:
    """Save the case's package once into ``workdir`` and run every check on a copy of it.

    Raises:
        AssertionError: a check failed; the message names the check and the case.
    """
    original = _saved(case, workdir / "original")
    for check in checks:
        _run(check, case, original, workdir / check.__name__)


class FlavorCheck:
    """One check, bound to packages saved once per case: call it with the case and a folder."""

    def __init__(self, check: Check, saved: dict[str, SavedModel]) -> None:
        self.check = check
        self._saved = saved  # shared by the checks of one parametrize_with_checks call

    def __repr__(self) -> str:
        return self.check.__name__

    def __call__(self, case: FlavorCase, workdir: Path) -> None:
        original = self._saved.get(case.id)
        if original is None or not original.package.is_dir():
            original = self._saved[case.id] = _saved(case, workdir / "original")
        _run(self.check, case, original, workdir / "check")


def parametrize_with_checks(
    cases: Sequence[FlavorCase], checks: Sequence[Check] = CHECKS
) -> MarkDecorator:
    """A pytest mark giving a test the arguments ``case`` and ``check``, one test per pair.

    Each case's package is saved once, by the first check that needs it, and every check
    works on its own copy. The test calls ``check(case, tmp_path)``.
    """
    import pytest

    saved: dict[str, SavedModel] = {}
    params = [
        pytest.param(case, FlavorCheck(check, saved), id=f"{case.id}-{check.__name__}")
        for case in cases
        for check in checks
    ]
    return pytest.mark.parametrize(("case", "check"), params)


def _saved(case: FlavorCase, folder: Path) -> SavedModel:
    folder.parent.mkdir(parents=True, exist_ok=True)
    saved = case.make(folder)
    assert saved.package.is_dir(), f"case {case.id!r} saved no package at {saved.package}"
    return saved


def _run(check: Check, case: FlavorCase, original: SavedModel, workdir: Path) -> None:
    """Run ``check`` on a fresh copy of the package (checks may damage what they get)."""
    workdir.mkdir(parents=True)
    copy = SavedModel(workdir / "package", original.expected)
    shutil.copytree(original.package, copy.package)
    scratch = workdir / "scratch"
    scratch.mkdir()
    try:
        check(case, copy, scratch)
    except AssertionError as exc:
        raise AssertionError(f"{check.__name__} failed for case {case.id!r}: {exc}") from exc


def _assert_same(got: Any, expected: Any) -> None:
    import numpy as np

    got, expected = np.asarray(got), np.asarray(expected)
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    else:
        np.testing.assert_array_equal(got, expected)


@contextmanager
def _raises(kind: type[Exception], pattern: str) -> Iterator[None]:
    """Like ``pytest.raises(kind, match=pattern)``, without needing pytest."""
    try:
        yield
    except kind as exc:
        assert re.search(pattern, str(exc)), f"{type(exc).__name__} {exc} does not match {pattern}"
    else:
        raise AssertionError(f"no {kind.__name__} (matching {pattern!r}) was raised")
