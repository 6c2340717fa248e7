"""Data validation: expectation suites, checked over Parquet/CSV files by DuckDB, stored per
dataset version.

A suite is a named list of expectations, declared in Python or YAML. Suites are versioned by
content: saving a changed suite makes a new version, saving the same one again does not. Files are
scanned where they lie, never loaded whole into memory (DuckDB streams them under a memory
limit), so tables larger than memory validate too. Custom SQL sees only the table, as ``data``, in
a DuckDB connection that cannot open any other file, and every query stops at a time and a memory
limit (the ``query_timeout`` and ``query_memory`` settings; see :mod:`._query_guard`).

Example:
    >>> suite = (
    ...     Suite("orders")
    ...     .not_null("id")
    ...     .unique("id")
    ...     .between("amount", min=0)
    ...     .sql("SELECT * FROM data WHERE shipped_at < ordered_at")
    ... )
    >>> result = validate_files(suite, ["orders.parquet"])  # doctest: +SKIP
    >>> result.success, result.results[2].observed["unexpected_count"]  # doctest: +SKIP
    (False, 3)

The expectations and their parameters are :class:`Suite`'s builder methods; ``mostly`` is the
fraction of the non-null values (of all rows, for ``not_null``) that must pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..errors import Conflict, DataError, InvalidInput, NotFound
from ..store import schema as t
from ._expectations import evaluate, normalize, reason
from ._query_guard import QueryLimits, guarded

__all__ = [
    "Expectation",
    "ExpectationResult",
    "Suite",
    "ValidationResult",
    "latest_results",
    "load_suite",
    "save_result",
    "save_suite",
    "validate_files",
]

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv"}


@dataclass(frozen=True)
class Expectation:
    """One check, e.g. ``Expectation("between", {"column": "age", "min": 0})``.

    Parameters are checked on construction (an unknown kind or parameter raises InvalidInput
    naming it) and stored without those equal to their defaults.
    """

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(normalize(self.kind, self.params)))

    def __hash__(self) -> int:
        return hash(_canonical(self.to_dict()))

    def __reduce__(self) -> tuple[Any, ...]:  # a mappingproxy cannot be pickled
        return (Expectation, (self.kind, dict(self.params)))

    def __repr__(self) -> str:
        return f"Expectation({self.kind!r}, {dict(self.params)!r})"

    def to_dict(self) -> dict[str, Any]:
        """The YAML form: ``{"between": {"column": "age", "min": 0}}``."""
        return {
            self.kind: {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()}
        }


@dataclass(frozen=True)
class Suite:
    """A named, immutable list of expectations; the builder methods return new suites."""

    name: str
    expectations: tuple[Expectation, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or len(self.name) > 256:
            raise InvalidInput(f"suite name {self.name!r} must be a non-empty string (<= 256)")
        items = tuple(self.expectations)
        for item in items:
            if not isinstance(item, Expectation):
                raise InvalidInput(f"suite {self.name!r}: {item!r} is not an Expectation")
        object.__setattr__(self, "expectations", items)

    @classmethod
    def from_dict(cls, document: Any, *, source: str = "suite") -> Suite:
        """A suite from ``{"name": ..., "expectations": [{kind: {param: value}}, ...]}``."""
        return _from_document(document, source, None)

    @classmethod
    def from_yaml(cls, text_or_path: str | os.PathLike[str]) -> Suite:
        """A suite from YAML text or a ``.yaml``/``.yml`` file; errors give the line.

        Example:
            >>> Suite.from_yaml("name: s\\nexpectations:\\n  - not_null: {column: id}\\n")
            Suite(name='s', expectations=(Expectation('not_null', {'column': 'id'}),))
        """
        text, source = text_or_path, "suite YAML"
        if not isinstance(text, str) or ("\n" not in text and text.endswith((".yaml", ".yml"))):
            source = str(text_or_path)
            try:
                text = Path(text_or_path).read_text(encoding="utf-8")
            except FileNotFoundError:
                raise NotFound(f"suite file {source!r} does not exist") from None
            except (OSError, UnicodeDecodeError) as error:
                raise InvalidInput(f"cannot read suite file {source!r}: {error}") from None
        return _from_yaml(text, source)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "expectations": [e.to_dict() for e in self.expectations]}

    def to_yaml(self) -> str:
        import yaml

        return str(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    @property
    def content_hash(self) -> str:
        """BLAKE3 of the canonical JSON of :meth:`to_dict`: equal suites hash alike."""
        from blake3 import blake3

        return blake3(_canonical(self.to_dict()).encode("utf-8")).hexdigest()

    def expect(self, kind: str, **params: Any) -> Suite:
        """This suite plus one expectation of any kind."""
        return dataclasses.replace(
            self, expectations=(*self.expectations, Expectation(kind, params))
        )

    def column_exists(self, column: str) -> Suite:
        return self.expect("column_exists", column=column)

    def column_type(self, column: str, type: str) -> Suite:
        return self.expect("column_type", column=column, type=type)

    def not_null(self, column: str, mostly: float = 1.0) -> Suite:
        return self.expect("not_null", column=column, mostly=mostly)

    def between(self, column: str, min: Any = None, max: Any = None, mostly: float = 1.0) -> Suite:
        return self.expect("between", column=column, min=min, max=max, mostly=mostly)

    def in_set(self, column: str, values: Sequence[Any], mostly: float = 1.0) -> Suite:
        return self.expect("in_set", column=column, values=values, mostly=mostly)

    def unique(self, column: str | None = None, *, columns: Sequence[str] | None = None) -> Suite:
        key = {"column": column} if columns is None else {"columns": columns}
        return self.expect("unique", **key)

    def matches_regex(self, column: str, pattern: str, mostly: float = 1.0) -> Suite:
        return self.expect("matches_regex", column=column, pattern=pattern, mostly=mostly)

    def row_count_between(self, min: int | None = None, max: int | None = None) -> Suite:
        return self.expect("row_count_between", min=min, max=max)

    def fresh(self, column: str, max_age: str | float = "24h", now: Any = None) -> Suite:
        return self.expect("fresh", column=column, max_age=max_age, now=now)

    def sql(self, query: str, expect: str = "zero_rows") -> Suite:
        return self.expect("sql", query=query, expect=expect)


@dataclass(frozen=True)
class ExpectationResult:
    expectation: Expectation
    success: bool
    observed: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        kind, params = next(iter(self.expectation.to_dict().items()))
        return {"kind": kind, "params": params, "success": self.success, "observed": self.observed}


@dataclass(frozen=True)
class ValidationResult:
    suite: str
    suite_version: int | None
    success: bool
    results: tuple[ExpectationResult, ...]

    def to_dict(self) -> dict[str, Any]:
        failed = sum(not result.success for result in self.results)
        return {
            "suite": self.suite,
            "suite_version": self.suite_version,
            "success": self.success,
            "statistics": {"evaluated": len(self.results), "failed": failed},
            "results": [result.to_dict() for result in self.results],
        }


def validate_files(
    suite: Suite,
    files: Sequence[str | os.PathLike[str]],
    *,
    format: str | None = None,
    limits: QueryLimits | None = None,
) -> ValidationResult:
    """Check ``suite`` against the table that ``files`` form together (folders are expanded to
    their files). ``format`` is ``"parquet"`` or ``"csv"``; by default the files' suffix says.

    A missing column fails only the expectations that name it; unreadable files raise DataError.
    The queries run within ``limits`` (default: 300 s and 1 GiB); past them they stop and
    LimitExceeded names the bound.
    """
    import duckdb

    paths, fmt = _resolve_files(files, format)
    with _sandbox(paths, fmt, limits or QueryLimits(), suite.name) as con:
        try:
            outcomes = evaluate(con, [(e.kind, e.params) for e in suite.expectations])
        except duckdb.Error as error:  # the table itself cannot be scanned
            con.check()
            raise DataError(_unreadable(paths, fmt, error)) from None
    results = tuple(
        ExpectationResult(expectation, success, observed)
        for expectation, (success, observed) in zip(suite.expectations, outcomes, strict=True)
    )
    return ValidationResult(suite.name, None, all(r.success for r in results), results)


# --- persistence ------------------------------------------------------------------------------


def save_suite(conn: sa.Connection, suite: Suite) -> tuple[str, int]:
    """Store ``suite``: ``(id, version)`` of the stored suite with the same content, or of a new
    version numbered one past the newest."""
    suites, digest = t.validation_suites, suite.content_hash
    same = sa.select(suites.c.id, suites.c.version).where(
        suites.c.name == suite.name, suites.c.content_hash == digest
    )
    found = conn.execute(same).first()
    if found is not None:
        return str(found.id), int(found.version)
    newest = sa.select(sa.func.max(suites.c.version)).where(suites.c.name == suite.name)
    version = (conn.execute(newest).scalar() or 0) + 1
    row = {"id": new_id(), "name": suite.name, "version": version, "content_hash": digest}
    row |= {"definition_json": _canonical(suite.to_dict()), "created_at": now_ms()}
    try:
        with conn.begin_nested():
            conn.execute(suites.insert(), row)
    except sa.exc.IntegrityError:  # a concurrent writer stored this name just now
        found = conn.execute(same).first()
        if found is None:
            raise Conflict(f"suite {suite.name!r} changed concurrently; save it again") from None
        return str(found.id), int(found.version)
    return str(row["id"]), version


def load_suite(
    conn: sa.Connection, name: str, version: int | None = None
) -> tuple[str, int, Suite]:
    """``(id, version, suite)`` of suite ``name`` at ``version`` (default: the newest)."""
    suites = t.validation_suites
    query = sa.select(suites.c.id, suites.c.version, suites.c.definition_json).where(
        suites.c.name == name
    )
    if version is not None:
        query = query.where(suites.c.version == version)
    found = conn.execute(query.order_by(suites.c.version.desc()).limit(1)).first()
    if found is None:
        versions = sa.select(suites.c.version).where(suites.c.name == name)
        known = list(conn.execute(versions.order_by(suites.c.version)).scalars())
        if known:
            span = f"{known[0]}..{known[-1]}" if len(known) > 2 else ", ".join(map(str, known))
            raise NotFound(f"suite {name!r} has no version {version}; versions: {span}")
        names = conn.execute(sa.select(suites.c.name).distinct().order_by(suites.c.name))
        listed = ", ".join(names.scalars()) or "none yet"
        raise NotFound(f"validation suite {name!r} does not exist; suites: {listed}")
    suite = Suite.from_dict(json.loads(found.definition_json), source=f"stored suite {name!r}")
    return found.id, found.version, suite


def save_result(
    conn: sa.Connection, dataset_version_id: str, suite_id: str, result: ValidationResult
) -> str:
    """Store ``result`` for a dataset version; its suite version is taken from ``suite_id``."""
    suites = t.validation_suites
    stored = conn.execute(
        sa.select(suites.c.name, suites.c.version).where(suites.c.id == suite_id)
    ).first()
    if stored is None:
        raise NotFound(f"validation suite id {suite_id!r} does not exist; save the suite first")
    if stored.name != result.suite:
        raise InvalidInput(f"the result is of suite {result.suite!r}, not {stored.name!r}")
    document = dataclasses.replace(result, suite_version=stored.version).to_dict()
    row_id = new_id()
    row: dict[str, Any] = {"id": row_id, "dataset_version_id": dataset_version_id}
    row["suite_id"] = suite_id
    row |= {"success": result.success, "result_json": json.dumps(document), "created_at": now_ms()}
    try:
        with conn.begin_nested():
            conn.execute(t.validation_results.insert(), row)
    except sa.exc.IntegrityError:
        raise NotFound(f"dataset version {dataset_version_id!r} does not exist") from None
    return row_id


def latest_results(conn: sa.Connection, dataset_version_id: str) -> list[dict[str, Any]]:
    """The newest result of each suite for a dataset version, by suite name, for display."""
    results, suites = t.validation_results, t.validation_suites
    rank = sa.func.row_number().over(
        partition_by=suites.c.name, order_by=(results.c.created_at.desc(), results.c.id.desc())
    )
    shown = [results.c.id, suites.c.name.label("suite"), suites.c.version.label("suite_version")]
    shown += [results.c.suite_id, results.c.success, results.c.created_at, results.c.result_json]
    ranked = (
        sa.select(*shown, rank.label("rank"))
        .join(suites, suites.c.id == results.c.suite_id)
        .where(results.c.dataset_version_id == dataset_version_id)
        .subquery()
    )
    query = sa.select(ranked).where(ranked.c.rank == 1).order_by(ranked.c.suite)
    rows = [dict(row._mapping) for row in conn.execute(query)]
    for row in rows:
        del row["rank"]
        row |= {"success": bool(row["success"]), "result": json.loads(row.pop("result_json"))}
    return rows


# --- helpers ----------------------------------------------------------------------------------


def _canonical(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _resolve_files(
    files: Sequence[str | os.PathLike[str]], format: str | None
) -> tuple[list[str], str]:
    if isinstance(files, str | os.PathLike):
        files = [files]
    if format is not None and format not in ("parquet", "csv"):
        raise InvalidInput(f"format {format!r} is not supported; use 'parquet' or 'csv'")
    paths: list[Path] = []
    for given in files:
        path = Path(given).expanduser().resolve()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _format_of(p))
            paths += [p for p in found if not p.name.startswith((".", "_"))]
        elif path.is_file():
            paths.append(path)
        else:
            raise NotFound(f"cannot validate {os.fspath(given)!r}: no such file or folder")
    if not paths:
        raise InvalidInput(f"no data files to validate in {[os.fspath(f) for f in files]}")
    formats = {format or _format_of(path) for path in paths}
    if None in formats or len(formats) > 1:
        raise InvalidInput(
            f"cannot tell one format for {[p.name for p in paths][:5]}: name the files "
            ".parquet/.pq or .csv/.tsv (optionally .gz), or pass format='parquet' or 'csv'"
        )
    return [str(path) for path in paths], str(formats.pop())


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    return _FORMATS.get(os.path.splitext(name.removesuffix(".gz"))[1])


@contextlib.contextmanager
def _sandbox(paths: list[str], fmt: str, limits: QueryLimits, suite: str) -> Iterator[Any]:
    """A DuckDB connection where ``data`` is the files' table and no other file can be opened,
    its queries bounded by ``limits``."""
    import duckdb

    listed = "[" + ", ".join("'" + path.replace("'", "''") + "'" for path in paths) + "]"
    scan = (
        f"read_parquet({listed}, union_by_name = true)"
        if fmt == "parquet"
        else f"read_csv({listed}, union_by_name = true)"
    )
    with tempfile.TemporaryDirectory(prefix="loopwright-validate-") as spill:
        config: dict[str, Any] = {**limits.duckdb_config, "temp_directory": spill}
        con = duckdb.connect(config=config)
        try:
            con.execute(f"SET allowed_paths = {listed}")
            con.execute("SET enable_external_access = false")
            con.execute("SET autoinstall_known_extensions = false")
            con.execute("SET enable_progress_bar = false")
            con.execute("SET lock_configuration = true")
            try:
                con.execute(f"CREATE VIEW data AS SELECT * FROM {scan}")  # noqa: S608 (quoted)
            except duckdb.Error as error:
                raise DataError(_unreadable(paths, fmt, error)) from None
            with guarded(con, limits, what=f"validation suite {suite!r}") as bounded:
                yield bounded
        finally:
            con.close()


def _unreadable(paths: list[str], fmt: str, error: BaseException) -> str:
    files = f"{paths[0]!r}" + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")
    return f"cannot read {files} as {fmt}: {reason(error)}; check the files and their format"


def _from_yaml(text: str, source: str) -> Suite:
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        document = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidInput(f"{source} is malformed YAML{where}: {error.problem}") from None
    except yaml.YAMLError as error:
        raise InvalidInput(f"{source} is malformed YAML: {error}") from None
    finally:
        loader.dispose()
    return _from_document(document, source, node)


def _from_document(document: Any, source: str, node: Any) -> Suite:
    if not isinstance(document, Mapping) or set(document) - {"name", "expectations"}:
        raise InvalidInput(
            f"{source} must be a mapping with keys 'name' and 'expectations', not {document!r:.80}"
        )
    items = document.get("expectations") or []
    if not isinstance(items, list):
        raise InvalidInput(f"{source}: 'expectations' must be a list")
    expectations = []
    for index, item in enumerate(items):
        where = f"{source}, expectation {index + 1}{_line(node, index)}"
        if not isinstance(item, Mapping) or len(item) != 1:
            raise InvalidInput(f"{where}: write each expectation as {{kind: {{param: value}}}}")
        ((kind, params),) = item.items()
        try:
            expectations.append(Expectation(kind, params if params is not None else {}))
        except InvalidInput as error:
            raise InvalidInput(f"{where}: {error.message}") from None
    try:
        return Suite(document.get("name"), tuple(expectations))  # type: ignore[arg-type]
    except InvalidInput as error:
        raise InvalidInput(f"{source}: {error.message}") from None


def _line(node: Any, index: int) -> str:
    """`` (line N)``: where expectation ``index`` starts, when the suite came from YAML."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return ""
    for key, value in node.value:
        if key.value == "expectations" and isinstance(value, yaml.SequenceNode):
            items = value.value
            return f" (line {items[index].start_mark.line + 1})" if index < len(items) else ""
    return ""
