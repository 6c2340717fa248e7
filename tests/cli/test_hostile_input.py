"""The CLI on hostile or mistaken input: one clear error line and exit status 1, never a
traceback (unless --debug), nothing recorded from a forged file, no store created by a command
that only reads."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import typer
from _cli_checks import assert_clean_failure
from blake3 import blake3
from typer.testing import CliRunner

from conftest import WIDE
from loopwright.cli._context import CREATING_COMMANDS, READING_COMMANDS
from loopwright.cli.app import app
from loopwright.store.blobs import BlobStore


def _pointer_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _forge(pointer: Path, **fields: str) -> None:
    lines = []
    for line in _pointer_text(pointer).splitlines():
        key = line.partition(":")[0]
        lines.append(f"{key}: {fields[key]}" if key in fields else line)
    pointer.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def added(lw_json: Any) -> dict[str, Any]:
    Path("a.txt").write_bytes(b"alpha")
    return dict(lw_json("data", "add", "ds", "a.txt"))


@pytest.mark.parametrize(
    "command",
    [
        ["data", "checkout", "bad.lw"],
        ["data", "status", "bad.lw"],
        ["data", "validate", "bad.lw", "--suite", "suite.yaml"],
        ["data", "pull", "bad.lw", "--remote", "remote"],
    ],
)
def test_a_pointer_that_is_not_utf8_is_named(lw: Any, added: Any, command: list[str]) -> None:
    Path("bad.lw").write_bytes(b"\xff\xfe dataset: ds\n")
    assert_clean_failure(lw(*command), "bad.lw is not a pointer file", "not UTF-8")


def test_push_to_a_missing_bucket_names_it(lw: Any, added: Any, s3_blob_uri: str) -> None:
    missing = f"s3://lw-missing-{uuid.uuid4().hex[:12]}"
    result = lw("data", "push", "ds", "--remote", missing)
    assert_clean_failure(result, f"cannot list the blob store {missing}", "bucket")


@pytest.mark.parametrize("option", ["--blob-uri", None])
def test_an_unknown_blob_protocol_is_named(lw: Any, added: Any, option: str | None) -> None:
    if option is None:
        result = lw("data", "push", "ds", "--remote", "nosuchproto://bucket/x")
    else:
        result = lw(option, "nosuchproto://bucket/x", "init")
    assert_clean_failure(result, "cannot open 'nosuchproto://bucket/x'", "Protocol not known")


def test_adding_from_an_unknown_protocol_is_named(lw: Any) -> None:
    result = lw("data", "add", "ds", "nosuchproto://bucket/x")
    assert_clean_failure(result, "cannot read 'nosuchproto://bucket/x'", "Protocol not known")


def _forged_remote(manifest: bytes, dataset: str = "ds") -> Path:
    """A remote folder holding ``manifest`` as a blob, and a pointer naming it."""
    content_hash = BlobStore("remote").put_bytes(manifest).hash
    Path("x.txt.lw").write_text(
        f"dataset: {dataset}\nversion: 1\nid: {uuid.uuid4().hex}\n"
        f"content_hash: {content_hash}\npath: x.txt\n",
        encoding="utf-8",
    )
    return Path("x.txt.lw")


@pytest.mark.parametrize(
    ("manifest", "fragment"),
    [
        (b"not a manifest line\n", "is malformed"),
        (b"a.txt\tbig\t" + b"0" * 64 + b"\n", "is malformed"),
        (b"\xff\xfe\n", "is malformed"),
        (b"../escape\t5\t" + b"0" * 64 + b"\n", "is malformed"),
        (b"a.txt\t5\t" + b"Z" * 64 + b"\n", "not 64 lowercase hex"),
        (b"a.txt\t5\tnot-a-hash\n", "not 64 lowercase hex"),
    ],
)
def test_pull_refuses_a_bad_manifest_and_records_nothing(
    lw: Any, lw_json: Any, manifest: bytes, fragment: str
) -> None:
    pointer = _forged_remote(manifest)
    result = lw("data", "pull", str(pointer), "--remote", "remote")
    assert_clean_failure(result, "the manifest of ds@", fragment)
    assert lw_json("data", "list") == []


def test_pull_records_no_version_whose_files_are_missing_or_of_another_size(
    lw: Any, lw_json: Any
) -> None:
    real = BlobStore("remote").put_bytes(b"alpha")
    absent = blake3(b"never pushed").hexdigest()
    for line, fragment in (
        (f"a.txt\t{real.size + 1}\t{real.hash}\n", "gives sizes that its files do not have"),
        (f"a.txt\t5\t{absent}\n", "not in the blob store"),
    ):
        pointer = _forged_remote(line.encode())
        assert_clean_failure(lw("data", "pull", str(pointer), "--remote", "remote"), fragment)
        assert lw_json("data", "list") == []


def test_a_pointer_with_a_forged_content_hash_is_refused(lw: Any, added: Any) -> None:
    forged = blake3(b"other content").hexdigest()
    _forge(Path("a.txt.lw"), content_hash=forged)
    for command in (["checkout", "a.txt.lw"], ["status", "a.txt.lw"]):
        assert_clean_failure(lw("data", *command), "the pointer was edited", forged[:12])


def test_a_pointer_with_another_dataset_name_is_refused(lw: Any, added: Any) -> None:
    _forge(Path("a.txt.lw"), dataset="other")
    assert_clean_failure(lw("data", "checkout", "a.txt.lw"), "the pointer was edited", "'other'")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("id", "../../etc", "'id' must be 32 lowercase hex digits"),
        ("content_hash", "xyz", "'content_hash' must be 64 lowercase hex digits"),
        ("dataset", "-bad name", "dataset name"),
        ("version", "9" * 40, "'version' must be a number"),
    ],
)
def test_pointer_fields_are_checked(
    lw: Any, added: Any, field: str, value: str, fragment: str
) -> None:
    _forge(Path("a.txt.lw"), **{field: value})
    assert_clean_failure(lw("data", "checkout", "a.txt.lw"), "a.txt.lw: ", fragment)


def test_an_unexpected_os_error_is_one_line_and_debug_shows_it(lw: Any, added: Any) -> None:
    Path("afile").write_bytes(b"")
    assert_clean_failure(
        lw("data", "checkout", "ds@v1", "afile/sub"), "Not a directory", "NotADirectoryError"
    )
    shown = lw("--debug", "data", "checkout", "ds@v1", "afile/sub")
    assert shown.exit_code == 1 and isinstance(shown.exception, NotADirectoryError)


def _commands(group: Any, prefix: str = "") -> list[str]:
    found = []
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        found += _commands(command, f"{path} ") if hasattr(command, "commands") else [path]
    return found


def test_every_command_is_classed_as_reading_or_creating() -> None:
    commands = set(_commands(typer.main.get_command(app)))
    # The prediction log is files beside the store (cli/predictions.py): reading it opens none.
    opens_no_store = {"config"} | {f"predictions {c}" for c in ("list", "show", "compact", "prune")}
    opens_no_store |= {"monitors compare"}  # two local files (cli/monitors.py)
    assert READING_COMMANDS.isdisjoint(CREATING_COMMANDS)
    assert commands == READING_COMMANDS | CREATING_COMMANDS | opens_no_store


_READING_ARGS = {
    "data log": ["ds"],
    "data show": ["ds"],
    "data diff": ["ds@v1", "ds@v2"],
    "data status": ["ds", "folder"],
    "data checkout": ["ds@v1", "folder"],
    "data push": ["--remote", "remote"],
    "runs show": ["0" * 32],
    "runs compare": ["0" * 32, "1" * 32],
    "models show": ["m"],
    "models versions": ["m"],
    "models card": ["m", "1"],
    "models sbom": ["m", "1"],
    "deployments show": ["d"],
    "deployments history": ["d"],
    "deployments compare": ["d"],
    "monitors show": ["m"],
    "monitors history": ["m"],
    "monitors traces show": ["m"],
    "monitors traces history": ["m"],
    "monitors report": ["m"],
    "pipelines show": ["0" * 32],
    "prompts show": ["p"],
    "prompts versions": ["p"],
    "prompts diff": ["p", "1", "2"],
    "prompts format": ["prompts:/p/1"],
    "labels show": ["d"],
    "lineage": ["req-1"],
    "loops show": ["l"],
    "loops history": ["l"],
    "schedules show": ["s"],
    "features show": ["v"],
    "features diff": ["v"],
    "features historical": ["--entities", "e@v1", "--out", "out.parquet", "--service", "s"],
    "features online": ["--entity", "driver_id=1", "--service", "s"],
    "features skew": ["d"],
    "gateway routes show": ["r"],
    "traces show": ["0" * 32],
    "traces export": ["--output", "out.jsonl"],
    "serve": ["models:/m/1"],
    "predict": ["models:/m/1", "in.parquet", "--output", "out"],
    "eval records": ["qa"],
}


@pytest.mark.parametrize("command", sorted(READING_COMMANDS))
def test_reading_commands_do_not_create_a_store(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "typo" / "deeper"
    args = ["--db-uri", f"sqlite:///{missing / 'lw.db'}", "--home", str(tmp_path / "h")]
    result = CliRunner().invoke(
        app, [*args, *command.split(), *_READING_ARGS.get(command, [])], env=WIDE
    )
    assert_clean_failure(result, f"no Loopwright store at {missing / 'lw.db'}", "loopwright init")
    assert not (tmp_path / "typo").exists() and not (tmp_path / "h").exists()


def test_a_reading_command_on_an_empty_postgres_database_creates_nothing(pg_uri: str) -> None:
    import sqlalchemy as sa

    result = CliRunner().invoke(app, ["--db-uri", pg_uri, "runs", "list"], env=WIDE)
    assert_clean_failure(result, "holds no Loopwright store", "loopwright init")
    engine = sa.create_engine(pg_uri)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
    engine.dispose()


def _hostile_args(command: Any, value: str) -> list[str]:
    """``value`` for every required argument and option of ``command``."""
    args: list[str] = []
    for param in command.params:
        if not param.required:
            continue
        if param.param_type_name == "option":
            args += [param.opts[0], value]
        else:
            args.append(value)
    return args


def _leaves(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found += _leaves(command, (*prefix, name))
        else:
            found.append(((*prefix, name), command))
    return found


@pytest.mark.parametrize("value", ["nope", "../../etc/passwd", "x@v99999999999999999999", "[red]"])
def test_no_command_prints_a_traceback_on_bad_arguments(lw: Any, value: str) -> None:
    """Every command, given a hostile value for each required argument, fails cleanly."""
    assert lw("init").exit_code == 0
    for path, command in _leaves(typer.main.get_command(app)):
        if path in (("server",), ("ui",), ("scheduler",)):
            continue  # serves (ticks) until stopped
        result = lw(*path, *_hostile_args(command, value))
        output = result.stdout + result.stderr
        assert "Traceback" not in output, (path, output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            path,
            repr(result.exception),
        )


def test_db_current_on_a_mistyped_sqlite_path_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "lw.db"
    result = CliRunner().invoke(
        app, ["--db-uri", f"sqlite:///{missing}", "db", "current"], env=WIDE
    )
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert "schema (empty)" in result.stdout
    assert not (tmp_path / "typo").exists()
