"""``loopwright data``: dataset versions, pointer files, checkout, diff, push/pull, validation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._context import state
from ._output import JSON_OPTION, console, emit_json, fail, format_ms, handle_errors, print_table
from ._progress import progress_bar

if TYPE_CHECKING:
    from ..data.entities import DatasetVersion

__all__ = ["app"]

app = typer.Typer(
    help="Dataset versions: add, log, diff, checkout, push/pull, validate.", no_args_is_help=True
)


@contextmanager
def _progress(label: str, total: int | None, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A callback advancing the bar by ``n`` items."""
    with progress_bar(label, total, enabled) as update:
        yield lambda n: update(advance=n)


@contextmanager
def _transfer_progress(label: str, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A callback taking (done, total), as the blob transfer reports it."""
    with progress_bar(label, None, enabled) as update:
        yield lambda done, total: update(completed=done, total=total)


def _version_dict(v: DatasetVersion) -> dict[str, Any]:
    return {
        "id": v.id,
        "dataset": v.dataset,
        "version": v.number,
        "ref": v.ref,
        "content_hash": v.content_hash,
        "message": v.message,
        "parent_id": v.parent_id,
        "produced_by_run_id": v.produced_by_run_id,
        "file_count": v.file_count,
        "total_size": v.total_size,
        "source": v.source,
        "created_by": v.created_by,
        "created_at": v.created_at,
        "tags": dict(v.tags),
        "aliases": list(v.aliases),
    }


def _parse_pairs(pairs: list[str], what: str) -> dict[str, str]:
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"{what} {pair!r} must look like key=value")
        parsed[key] = value
    return parsed


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    paths: Annotated[list[str], typer.Argument(help="Files, folders, globs or fsspec URLs.")],
    message: Annotated[str | None, typer.Option("--message", "-m", help="What changed.")] = None,
    tag: Annotated[list[str], typer.Option("--tag", "-t", help="key=value (repeatable).")] = [],  # noqa: B006
    alias: Annotated[list[str], typer.Option("--alias", "-a", help="Alias to point here.")] = [],  # noqa: B006
    pointer: Annotated[bool, typer.Option(help="Write PATH.lw beside a single local path.")] = True,
    link: Annotated[
        str | None,
        typer.Option(
            "--link",
            help="How to store files of 64 KiB and more: reflink, hardlink or copy, or an order "
            "to try (reflink,copy). A hardlinked file becomes read-only. Setting: data_link.",
        ),
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Add a new version of NAME (identical content gives back the existing version).

    The version's id and content hash name it on every machine; its number (v3) is this
    store's count and can differ in a store that pulled it."""
    from ..data.pointer import check_inside_repository, write_pointer

    tags = _parse_pairs(tag, "tag")
    writes_pointer = pointer and len(paths) == 1 and "://" not in paths[0]
    state(ctx).data_link = link
    with handle_errors(), state(ctx).client() as client:
        if writes_pointer:
            check_inside_repository(paths[0])  # before the version is added
        with _progress(f"adding {name}", None, not json_output) as advance:
            version = client.datasets.add(
                name, paths, message=message, tags=tags, aliases=alias, progress=advance
            )
        written = None
        if writes_pointer and Path(paths[0]).exists():
            written = write_pointer(paths[0], version)
    if json_output:
        emit_json(_version_dict(version) | {"pointer": str(written) if written else None})
        return
    out = console()
    out.print(
        f"[bold]{version.ref}[/] {version.file_count:,} file(s), "
        f"{version.total_size:,} bytes, content {version.content_hash[:12]}"
    )
    out.print(f"id {version.id} (the same on every machine; v{version.number} is this store's)")
    if written:
        out.print(f"pointer {written} (commit it to Git; the data is in .gitignore)")


@app.command("list")
def list_datasets(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """List datasets."""
    with handle_errors(), state(ctx).client() as client:
        datasets = client.datasets.list_datasets()
    if json_output:
        emit_json(
            [
                {
                    "name": d.name,
                    "id": d.id,
                    "versions": d.version_count,
                    "description": d.description,
                    "created_at": d.created_at,
                }
                for d in datasets
            ]
        )
        return
    print_table(
        "Datasets",
        ["name", "versions", "created (UTC)", "description"],
        [(d.name, d.version_count, format_ms(d.created_at), d.description or "") for d in datasets],
    )


@app.command("log")
def log(ctx: typer.Context, name: str, json_output: bool = JSON_OPTION) -> None:
    """The versions of NAME, newest first."""
    with handle_errors(), state(ctx).client() as client:
        versions = client.datasets.versions(name)
    if json_output:
        emit_json([_version_dict(v) for v in versions])
        return
    print_table(
        f"{name}: versions",
        ["version", "created (UTC)", "files", "bytes", "aliases", "message", "id"],
        [
            (
                f"v{v.number}",
                format_ms(v.created_at),
                f"{v.file_count:,}",
                f"{v.total_size:,}",
                ", ".join(v.aliases),
                v.message or "",
                v.id,
            )
            for v in versions
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME@v3, NAME@alias or NAME@<id>.")],
    files: Annotated[bool, typer.Option("--files", help="List every file.")] = False,
    json_output: bool = JSON_OPTION,
) -> None:
    """One version: provenance, files, schema and profile, validation results, runs that used it."""
    with handle_errors(), state(ctx).client() as client:
        version = client.datasets.get(ref)
        entries = client.datasets.files(version)
        runs = client.datasets.runs_using(version)
        results = client.datasets.validation_results(version)
    if json_output:
        emit_json(
            _version_dict(version)
            | {
                "files": [{"path": e.path, "size": e.size, "hash": e.hash} for e in entries],
                "schema": version.schema,
                "profile": version.profile,
                "used_by_runs": runs,
                "validation": results,
            }
        )
        return
    out = console()
    out.print(
        f"[bold]{version.ref}[/] ({version.id}) {version.file_count:,} file(s), "
        f"{version.total_size:,} bytes; added {format_ms(version.created_at)} UTC by "
        f"{version.created_by}"
    )
    for label, value in (
        ("message", version.message),
        ("source", version.source),
        ("aliases", ", ".join(version.aliases)),
        ("tags", ", ".join(f"{k}={v}" for k, v in version.tags.items())),
        ("used by runs", ", ".join(runs)),
    ):
        if value:
            out.print(f"{label:<13}{value}", markup=False)
    if files or len(entries) <= 20:
        print_table(
            "Files",
            ["path", "size", "hash"],
            [(e.path, f"{e.size:,}", e.hash[:16]) for e in entries],
        )
    for path, profile in (version.profile or {}).items():
        rows = []
        for column, stats in profile.get("columns", {}).items():
            rows.append(
                (
                    column,
                    stats.get("type"),
                    stats.get("null_fraction"),
                    stats.get("distinct"),
                    stats.get("min"),
                    stats.get("max"),
                    stats.get("mean"),
                )
            )
        print_table(
            f"Profile of {path}: {profile.get('row_count', 0):,} rows",
            ["column", "type", "nulls", "distinct", "min", "max", "mean"],
            rows,
        )
    for result in results:
        mark = "passed" if result["success"] else "FAILED"
        out.print(
            f"validation {result['suite']} v{result['suite_version']}: {mark} "
            f"({format_ms(result['created_at'])} UTC)",
            markup=False,
        )


@app.command("diff")
def diff(ctx: typer.Context, old: str, new: str, json_output: bool = JSON_OPTION) -> None:
    """Files added, removed and changed between two versions; schema and statistics for tables."""
    from ..data.workspace import diff as diff_versions

    with handle_errors(), state(ctx).client() as client:
        result = diff_versions(client.datasets, client.datasets.get(old), client.datasets.get(new))
    if json_output:
        emit_json(
            {
                "old": result.old.ref,
                "new": result.new.ref,
                "added": [e.path for e in result.added],
                "removed": [e.path for e in result.removed],
                "changed": [a.path for a, _ in result.changed],
                "tabular": result.tabular,
            }
        )
        return
    out = console()
    out.print(
        f"{result.old.ref} -> {result.new.ref}: {len(result.added)} added, "
        f"{len(result.removed)} removed, {len(result.changed)} changed"
    )
    rows = (
        [("+", e.path, f"{e.size:,}") for e in result.added]
        + [("-", e.path, f"{e.size:,}") for e in result.removed]
        + [("~", b.path, f"{a.size:,} -> {b.size:,}") for a, b in result.changed]
    )
    if rows:
        print_table(None, ["", "path", "size"], rows[:200])
    for path, change in result.tabular.items():
        out.print(f"{path}: rows {change['rows'][0]} -> {change['rows'][1]}", markup=False)
        for column in change["columns_added"]:
            out.print(f"  + column {column}", markup=False)
        for column in change["columns_removed"]:
            out.print(f"  - column {column}", markup=False)
        stats = [
            (column, stat, before, after)
            for column, changed in change["columns_changed"].items()
            for stat, (before, after) in changed.items()
        ]
        if stats:
            print_table(f"{path}: column statistics", ["column", "statistic", "old", "new"], stats)


def _pointer_folder(client: Any, pointer: Path, name: str, version: DatasetVersion) -> Path:
    """Where a pointer's version is written: beside the pointer for a single file named like
    the pointer's data, else into the folder the pointer names."""
    single = version.file_count == 1 and client.datasets.files(version)[0].path == name
    return pointer.parent if single else pointer.parent / name


@app.command("checkout")
def checkout(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="A pointer file (PATH.lw) or a version ref.")],
    dest: Annotated[str | None, typer.Argument(help="Folder to write (refs only).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite local changes.")] = False,
    json_output: bool = JSON_OPTION,
) -> None:
    """Materialise a version: from a pointer file, or a ref into DEST."""
    from ..data.pointer import POINTER_SUFFIX, read_pointer
    from ..data.workspace import checkout as checkout_version

    with handle_errors(), state(ctx).client() as client:
        if target.endswith(POINTER_SUFFIX) and Path(target).is_file():
            pointer = read_pointer(target)
            version = client.datasets.resolve_pointer(pointer)
            folder = _pointer_folder(client, Path(target), pointer.path, version)
        else:
            if dest is None:
                fail("give a destination folder when checking out a ref (or pass a .lw pointer)")
            version = client.datasets.get(target)
            folder = Path(str(dest))
        with _progress(
            f"checking out {version.ref}", version.file_count, not json_output
        ) as advance:
            written = checkout_version(
                client.datasets, version, folder, force=force, progress=advance
            )
    if json_output:
        emit_json({"version": version.ref, "dest": str(folder), "written": written})
        return
    console().print(
        f"{version.ref} -> {folder}: {len(written)} file(s) written, "
        f"{version.file_count - len(written)} already up to date"
    )


@app.command("status")
def status(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="A version ref or a pointer file.")],
    path: Annotated[str | None, typer.Argument(help="Folder or file to compare.")] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Compare files on disk with a version (exit status 1 when they differ)."""
    from ..data.pointer import POINTER_SUFFIX, read_pointer
    from ..data.workspace import status as workspace_status

    with handle_errors(), state(ctx).client() as client:
        if ref.endswith(POINTER_SUFFIX) and Path(ref).is_file():
            pointer = read_pointer(ref)
            version = client.datasets.resolve_pointer(pointer)
            path = str(Path(ref).parent / pointer.path)
        else:
            version = client.datasets.get(ref)
        if path is None:
            fail("give the folder or file to compare with the version")
        result = workspace_status(client.datasets, version, str(path))
    if json_output:
        emit_json(
            {
                "version": version.ref,
                "clean": result.clean,
                "added": result.added,
                "removed": result.removed,
                "modified": result.modified,
            }
        )
    else:
        if result.clean:
            console().print(f"{path} matches {version.ref}")
        else:
            rows = (
                [("new", p) for p in result.added]
                + [("deleted", p) for p in result.removed]
                + [("modified", p) for p in result.modified]
            )
            print_table(f"{path} vs {version.ref}", ["change", "path"], rows[:500])
    if not result.clean:
        raise typer.Exit(1)


@app.command("tag")
def tag(ctx: typer.Context, ref: str, pairs: list[str]) -> None:
    """Set key=value tags on a version."""
    with handle_errors(), state(ctx).client() as client:
        for key, value in _parse_pairs(pairs, "tag").items():
            version = client.datasets.tag(ref, key, value)
    console().print(f"{version.ref}: " + ", ".join(f"{k}={v}" for k, v in version.tags.items()))


@app.command("alias")
def alias(ctx: typer.Context, ref: str, name: str) -> None:
    """Point an alias (e.g. golden) at a version; it moves if it pointed elsewhere."""
    with handle_errors(), state(ctx).client() as client:
        version = client.datasets.set_alias(ref, name)
    console().print(f"{version.dataset}@{name} -> {version.ref}")


_REMOTE_OPTION = typer.Option(
    "--remote",
    "-r",
    envvar="LOOPWRIGHT_DATA_REMOTE",
    help="Remote blob store: an s3:// URL or a folder (env LOOPWRIGHT_DATA_REMOTE).",
)


def _targets(client: Any, refs: list[str], *, pointers_as_pointers: bool) -> list[Any]:
    """Versions (or, for pull, pointers) named by refs: NAME (all versions), NAME@REF, PATH.lw."""
    from ..data.pointer import POINTER_SUFFIX, read_pointer

    if not refs:
        return [
            v for d in client.datasets.list_datasets() for v in client.datasets.versions(d.name)
        ]
    targets: list[Any] = []
    for ref in refs:
        if ref.endswith(POINTER_SUFFIX) and Path(ref).is_file():
            pointer = read_pointer(ref)
            targets.append(
                pointer if pointers_as_pointers else client.datasets.resolve_pointer(pointer)
            )
        elif "@" in ref:
            targets.append(client.datasets.get(ref))
        else:
            targets.extend(client.datasets.versions(ref))
    return targets


def _report(verb: str, report: Any, remote: str, json_output: bool, extra: dict[str, Any]) -> None:
    if json_output:
        emit_json(
            {
                "remote": remote,
                "requested": report.requested,
                "already_present": report.already_present,
                "transferred": report.transferred,
                "bytes": report.bytes,
                "packs": report.packs,
                "seconds": report.seconds,
            }
            | extra
        )
        return
    console().print(
        f"{verb} {report.transferred:,} blob(s), {report.bytes:,} bytes in "
        f"{report.seconds:.2f} s ({report.already_present:,} already there, "
        f"{report.packs} pack(s)) — {remote}",
        markup=False,
    )


@app.command("push")
def push_cmd(
    ctx: typer.Context,
    refs: Annotated[
        list[str] | None, typer.Argument(help="NAME, NAME@REF or PATH.lw; none: all.")
    ] = None,
    remote: Annotated[str, _REMOTE_OPTION] = "",
    json_output: bool = JSON_OPTION,
) -> None:
    """Send versions' files (and manifests) to a remote, transferring only what is missing."""
    from ..data.sync import push_versions

    if not remote:
        fail("give --remote (an s3:// URL or a folder) or set LOOPWRIGHT_DATA_REMOTE")
    with handle_errors(), state(ctx).client() as client:
        versions = _targets(client, list(refs or []), pointers_as_pointers=False)
        with _transfer_progress("pushing", not json_output) as advance:
            report = push_versions(client.datasets, versions, remote, progress=advance)
    _report("pushed", report, remote, json_output, {"versions": [v.ref for v in versions]})


@app.command("pull")
def pull_cmd(
    ctx: typer.Context,
    refs: Annotated[
        list[str] | None, typer.Argument(help="NAME, NAME@REF or PATH.lw; none: all.")
    ] = None,
    remote: Annotated[str, _REMOTE_OPTION] = "",
    checkout: Annotated[
        bool,
        typer.Option(
            "--checkout", help="Also write each pointer's data beside it (as `data checkout`)."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --checkout: overwrite local changes.")
    ] = False,
    json_output: bool = JSON_OPTION,
) -> None:
    """Fetch versions' files from a remote; a pointer file brings its version along if unknown."""
    from ..data.pointer import POINTER_SUFFIX
    from ..data.sync import pull_versions
    from ..data.workspace import checkout as checkout_version

    if not remote:
        fail("give --remote (an s3:// URL or a folder) or set LOOPWRIGHT_DATA_REMOTE")
    refs = list(refs or [])
    if checkout and not (refs and all(ref.endswith(POINTER_SUFFIX) for ref in refs)):
        fail("--checkout writes the data of pointer files: give only PATH.lw arguments")
    written: dict[str, list[str]] = {}
    with handle_errors(), state(ctx).client() as client:
        targets = _targets(client, refs, pointers_as_pointers=True)
        with _transfer_progress("pulling", not json_output) as advance:
            versions, report = pull_versions(client.datasets, targets, remote, progress=advance)
        if checkout:  # one target and one version per pointer, in order
            for ref, target, version in zip(refs, targets, versions, strict=True):
                folder = _pointer_folder(client, Path(ref), target.path, version)
                written[str(folder)] = checkout_version(
                    client.datasets, version, folder, force=force
                )
    _report(
        "pulled",
        report,
        remote,
        json_output,
        {"versions": [v.ref for v in versions], "checked_out": written},
    )
    if not json_output:
        for where, paths in written.items():
            console().print(f"{where}: {len(paths)} file(s) written", markup=False)


# The README shows the same suite; a test checks that both parse and run.
SUITE_EXAMPLE = """\
name: transactions
expectations:
  - column_exists: {column: id}
  - not_null: {column: id}
  - unique: {column: id}
  - column_type: {column: amount, type: float}
  - between: {column: amount, min: 0, max: 10000, mostly: 0.99}
  - in_set:
      column: country
      values:
        - US
        - DE
  - matches_regex: {column: email, pattern: '^[^@ ]+@[^@ ]+$'}
  - row_count_between: {min: 1}
  - fresh: {column: created_at, max_age: 24h}
  - sql: {query: "SELECT * FROM data WHERE amount > 5000 AND country = 'DE'"}
"""


@app.command(
    "validate",
    help="Check a version against an expectation suite; exit status 1 when any expectation "
    "fails.\n\nA suite file is YAML: a name and a list of expectations, each one kind with its "
    "parameters. mostly (0..1) is the share of rows that must pass; sql lists the rows that "
    "break a rule (expect: zero_rows, the default) or returns one boolean (expect: true), "
    "over the table as data. Column types: integer, float, string, boolean, timestamp, date. "
    "For example:\n\n" + SUITE_EXAMPLE,
)
def validate(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME@REF or PATH.lw.")],
    suite: Annotated[
        str, typer.Option("--suite", "-s", help="A YAML file or a stored suite name.")
    ],
    files: Annotated[
        str | None, typer.Option("--files", help="Glob of files in the version.")
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    from ..data.pointer import POINTER_SUFFIX, read_pointer

    with handle_errors(), state(ctx).client() as client:
        if ref.endswith(POINTER_SUFFIX) and Path(ref).is_file():
            version = client.datasets.resolve_pointer(read_pointer(ref))
        else:
            version = client.datasets.get(ref)
        result = client.datasets.validate(version, suite, files=files)
    if json_output:
        emit_json({"version": version.ref} | result.to_dict())
    else:
        rows = []
        for item in result.results:
            params = ", ".join(f"{k}={v}" for k, v in item.expectation.params.items())
            observed = ", ".join(f"{k}={v}" for k, v in item.observed.items() if k != "examples")
            rows.append(
                ("ok" if item.success else "FAILED", item.expectation.kind, params, observed)
            )
        print_table(
            f"{version.ref} against suite {result.suite} v{result.suite_version}",
            ["result", "expectation", "parameters", "observed"],
            rows,
        )
        verdict = "passed" if result.success else "FAILED"
        console().print(
            f"{sum(r.success for r in result.results)}/{len(result.results)} "
            f"expectations met: {verdict}"
        )
    if not result.success:
        raise typer.Exit(1)
