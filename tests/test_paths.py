"""The one path resolver: string rules, symlink escapes, and properties over arbitrary text."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopwright.errors import InvalidInput, UnsafePath
from loopwright.paths import normalize_relpath, open_folder_nofollow, safe_join

ACCEPTED = [
    ("a", "a"),
    ("a/b/c", "a/b/c"),
    ("a/b/c/", "a/b/c"),
    ("./a", "a"),
    ("a/./b", "a/b"),
    ("a//b///c", "a/b/c"),
    ("a/././/b/.", "a/b"),
    ("model.pkl", "model.pkl"),
    (".hidden/x", ".hidden/x"),
    ("..a/b..", "..a/b.."),  # dots inside a name are not '..' segments
    ("a.b.c/v1.2", "a.b.c/v1.2"),
    ("a/~b", "a/~b"),  # '~' only matters as the first segment
    ("ab:c", "ab:c"),  # a colon that is not a drive letter
    ("1:x", "1:x"),
    ("100%/a%20b", "100%/a%20b"),  # harmless percent signs
    ("caf\u00e9/\u6570\u636e.csv", "caf\u00e9/\u6570\u636e.csv"),  # kept as given, not NFC'd
    ("cafe\u0301", "cafe\u0301"),
    ("\u00bd-split", "\u00bd-split"),  # NFKC gives '1\u20442': no ASCII syntax appears
    ("\uff21\uff22", "\uff21\uff22"),  # fullwidth letters fold to letters only
    ("a" * 255, "a" * 255),
    ("/".join(["a" * 255] * 16), "/".join(["a" * 255] * 16)),  # 4095 bytes
]

REJECTED = [
    # (path, words the message must contain besides the path)
    ("", "empty"),
    (".", "empty"),
    ("./", "empty"),
    ("./././/", "empty"),
    ("/", "absolute"),
    ("///", "UNC"),
    ("/etc/passwd", "absolute"),
    ("//server/share/x", "UNC"),
    ("..", "'..'"),
    ("../x", "'..'"),
    ("a/../b", "'..'"),
    ("a/..", "'..'"),
    ("a/../../x", "'..'"),
    ("...", "dots and spaces"),
    ("a/.. /b", "dots and spaces"),
    ("a/. ./b", "dots and spaces"),
    ("a/ /b", "dots and spaces"),
    ("a\\b", "backslash"),
    ("..\\x", "backslash"),
    ("\\\\server\\share", "backslash"),
    ("C:", "drive"),
    ("c:/windows", "drive"),
    ("C:x", "drive"),
    ("./A:", "drive"),  # normalizes to 'A:': checked on the first named segment
    ("//C:/x", "UNC"),
    ("a\x00b", "control character"),
    ("a\nb", "control character"),
    ("\tb", "control character"),
    ("a\x7fb", "control character"),
    ("a\x85b", "control character"),
    ("%2e%2e/x", "percent-escape"),
    ("%2E%2E/x", "percent-escape"),
    ("a%2fb", "percent-escape"),
    ("a%2Fb", "percent-escape"),
    ("a%5cb", "percent-escape"),
    ("a%5Cb", "percent-escape"),
    ("a%252fb", "percent-escape"),
    ("a%25b", "percent-escape"),
    ("a%00b", "percent-escape"),
    ("a%0ab", "percent-escape"),
    ("a%c0%afb", "percent-escape"),
    ("a%e0%80%afb", "percent-escape"),
    ("a%u002fb", "percent-escape"),
    ("~", "'~'"),
    ("~/x", "'~'"),
    ("~root/x", "'~'"),
    ("./~/x", "'~'"),
    ("a/b\u2215c", "U+2215"),  # DIVISION SLASH
    ("a\u2044b", "U+2044"),  # FRACTION SLASH
    ("a\uff0fb", "U+FF0F"),  # FULLWIDTH SOLIDUS
    ("a\uff3cb", "U+FF3C"),  # FULLWIDTH REVERSE SOLIDUS
    ("a\ufe68b", "U+FE68"),  # SMALL REVERSE SOLIDUS
    ("\u2024\u2024/x", "U+2024"),  # ONE DOT LEADER
    ("\u2025/x", "U+2025"),  # TWO DOT LEADER
    ("notes\u2026", "U+2026"),  # HORIZONTAL ELLIPSIS -> '...'
    ("\uff0e\uff0e/x", "U+FF0E"),  # FULLWIDTH FULL STOP
    ("C\uff1ax", "U+FF1A"),  # FULLWIDTH COLON
    ("\uff5e/x", "U+FF5E"),  # FULLWIDTH TILDE
    ("\uff05\uff12\uff46", "U+FF05"),  # fullwidth '%2f'
    ("\u2100", "U+2100"),  # ACCOUNT OF folds to 'a/c'
    ("\uff23:x", "Unicode compatibility normalization"),  # fullwidth C + ':' reads 'C:x'
    ("x\ud800", "surrogate"),
    ("a" * 256, "255 bytes"),
    ("\u00e9" * 128, "255 bytes"),  # 128 characters, 256 bytes
    ("/".join(["a" * 255] * 16) + "/a", "4096"),
]


@pytest.mark.parametrize(("path", "expected"), ACCEPTED)
def test_accepted_paths_normalize(path: str, expected: str) -> None:
    assert normalize_relpath(path) == expected
    assert normalize_relpath(expected) == expected


@pytest.mark.parametrize(("path", "words"), REJECTED)
def test_rejected_paths_name_the_path_and_the_rule(path: str, words: str) -> None:
    with pytest.raises(UnsafePath) as caught:
        normalize_relpath(path, what="artifact path")
    message = str(caught.value)
    shown = repr(path)
    assert message.startswith(f"artifact path {shown if len(shown) <= 120 else shown[:100]}")
    assert words in message
    assert caught.value.code == "UNSAFE_PATH"


def test_message_follows_the_house_style() -> None:
    with pytest.raises(UnsafePath) as caught:
        normalize_relpath("../x", what="artifact path")
    assert str(caught.value) == (
        "artifact path '../x' is unsafe: '..' segments are not allowed; "
        "give a path relative to its root"
    )


def test_unsafe_path_is_caught_as_invalid_input_and_value_error() -> None:
    with pytest.raises(InvalidInput):
        normalize_relpath("../x")
    with pytest.raises(ValueError, match=r"path '\.\./x' is unsafe"):
        normalize_relpath("../x")


@pytest.mark.parametrize("value", [b"a/b", None, 3, Path("a/b")])
def test_non_str_paths_are_refused_naming_the_expected_type(value: object) -> None:
    with pytest.raises(UnsafePath, match=f"dataset path must be a str, not {type(value).__name__}"):
        normalize_relpath(value, what="dataset path")  # type: ignore[arg-type]
    with pytest.raises(UnsafePath, match="must be a str"):
        safe_join("/tmp", value)  # type: ignore[arg-type]


def test_huge_paths_are_shortened_in_messages() -> None:
    with pytest.raises(UnsafePath) as caught:
        normalize_relpath("a" * 100_000)
    assert len(str(caught.value)) < 400


# --- safe_join on a real filesystem ---------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "inside").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    return root


def test_safe_join_returns_the_normalized_path_under_root(root: Path) -> None:
    assert safe_join(root, "a//b/./c/") == root / "a" / "b" / "c"
    assert safe_join(str(root), "x") == root / "x"


def test_safe_join_accepts_nonexistent_tails(root: Path) -> None:
    assert safe_join(root, "inside/new/deeper/file.txt") == root / "inside/new/deeper/file.txt"


def test_safe_join_applies_the_string_rules(root: Path) -> None:
    with pytest.raises(UnsafePath, match=re.escape("artifact path '../outside/x' is unsafe: '..'")):
        safe_join(root, "../outside/x", what="artifact path")


def test_symlink_pointing_outside_is_refused(root: Path) -> None:
    (root / "escape").symlink_to(root.parent / "outside")
    with pytest.raises(UnsafePath) as caught:
        safe_join(root, "escape/secret.txt", what="artifact path")
    message = str(caught.value)
    assert "artifact path 'escape/secret.txt' is unsafe" in message
    assert "symbolic link" in message
    assert str(root.parent) not in message  # no server paths leak into messages
    with pytest.raises(UnsafePath):
        safe_join(root, "escape")


def test_nested_and_absolute_symlinks_pointing_outside_are_refused(root: Path) -> None:
    (root / "inside" / "up").symlink_to("../../outside")
    (root / "inside" / "etc").symlink_to("/etc")
    for path in ("inside/up/x", "inside/up", "inside/etc/passwd"):
        with pytest.raises(UnsafePath, match="symbolic link"):
            safe_join(root, path)


def test_dangling_symlink_pointing_outside_is_refused(root: Path) -> None:
    # Writing through it would create a file outside the root.
    (root / "dangling").symlink_to(root.parent / "outside" / "not-yet")
    with pytest.raises(UnsafePath, match="symbolic link"):
        safe_join(root, "dangling")


def test_symlink_pointing_inside_is_fine(root: Path) -> None:
    (root / "alias").symlink_to("inside")
    (root / "inside" / "self").symlink_to(root)
    assert safe_join(root, "alias/x") == root / "alias" / "x"
    assert safe_join(root, "inside/self/inside") == root / "inside/self/inside"


def test_root_reached_through_a_symlink_is_fine(root: Path, tmp_path: Path) -> None:
    (tmp_path / "root-link").symlink_to(root)
    assert safe_join(tmp_path / "root-link", "inside/x") == tmp_path / "root-link/inside/x"


def test_open_folder_nofollow_walks_down_and_creates(root: Path, tmp_path: Path) -> None:
    (tmp_path / "root-link").symlink_to(root)  # the root itself may be a link
    fd = open_folder_nofollow(tmp_path / "root-link", "inside/./new//deeper", create=True)
    try:
        assert os.path.samestat(os.fstat(fd), os.stat(root / "inside" / "new" / "deeper"))
    finally:
        os.close(fd)
    with pytest.raises(FileNotFoundError):
        open_folder_nofollow(root, "inside/missing")
    assert not (root / "inside" / "missing").exists()


def test_open_folder_nofollow_refuses_a_link_on_the_way(root: Path) -> None:
    # Even a link pointing inside the root: it could be swapped after any check.
    (root / "alias").symlink_to("inside")
    for below in ("alias", "alias/x"):
        with pytest.raises(OSError) as caught:
            open_folder_nofollow(root, below, create=True)
        assert not isinstance(caught.value, FileNotFoundError)
    assert not (root / "inside" / "x").exists()


# --- properties -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def property_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A root whose symlinks lead inside, outside, to itself, nowhere and in a loop."""
    base = tmp_path_factory.mktemp("property")
    root = base / "root"
    (root / "a" / "b").mkdir(parents=True)
    (base / "outside").mkdir()
    (root / "out").symlink_to(base / "outside")
    (root / "a" / "up").symlink_to("../..")
    (root / "in").symlink_to("a/b")
    (root / "self").symlink_to(".")
    (root / "gone").symlink_to(base / "outside" / "missing")
    (root / "loop").symlink_to("loop")
    yield root


SEGMENTS = st.sampled_from(
    [
        "..", ".", "", "a", "b", "%2e%2e", "%2f", "%252e", "\\", "/", "\x00", "~", "C:", " ",
        "...", "\u2215", "\uff0e", "\u2024", "\u00e9", "\uff23", "out", "in", "self", "gone",
        "loop", "up",
    ]
)  # fmt: skip
PATHS = st.one_of(
    st.text(),
    st.lists(SEGMENTS, max_size=8).map("/".join),
    st.lists(st.one_of(SEGMENTS, st.text(max_size=3)), max_size=8).map("".join),
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=PATHS)
def test_result_is_unsafe_or_inside_root(property_root: Path, path: str) -> None:
    try:
        normal = normalize_relpath(path)
    except UnsafePath:
        with pytest.raises(UnsafePath):
            safe_join(property_root, path)
        return
    assert normalize_relpath(normal) == normal  # idempotent
    parts = normal.split("/")
    assert all(part not in ("", ".", "..") for part in parts)
    assert not normal.startswith(("/", "~")) and "\\" not in normal
    try:
        joined = safe_join(property_root, path)
    except UnsafePath as error:
        assert "symbolic link" in str(error)
        return
    real_root = os.path.realpath(property_root)
    assert os.path.commonpath([real_root, os.path.realpath(joined)]) == real_root
    assert joined == property_root.joinpath(*parts)


NAMES = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N"]) | st.sampled_from("-_."),
    min_size=1,
    max_size=20,
).filter(lambda name: name.strip(".") != "")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(NAMES, min_size=1, max_size=6), data=st.data())
def test_plain_names_survive_any_spelling_of_separators(
    names: list[str], data: st.DataObject
) -> None:
    try:
        expected = normalize_relpath("/".join(names))
    except UnsafePath:
        return  # e.g. a letter that NFKC folds into path syntax
    separators = st.sampled_from(["/", "//", "/./", "/././/"])
    spelled = names[0]
    for name in names[1:]:
        spelled += data.draw(separators) + name
    prefix = data.draw(st.sampled_from(["", "./", "././"]))
    suffix = data.draw(st.sampled_from(["", "/", "/.", "//./"]))
    assert normalize_relpath(prefix + spelled + suffix) == expected == "/".join(names)
