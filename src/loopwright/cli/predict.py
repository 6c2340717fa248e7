"""``loopwright predict``: batch scoring of Parquet, CSV or a dataset version into Parquet."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._context import CliState, state
from ._output import JSON_OPTION, console, emit_json, handle_errors
from ._progress import progress_bar

if TYPE_CHECKING:
    from ..client import Client
    from ..serving.batch import BatchResult

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict(
        ctx: typer.Context,
        model: Annotated[
            str,
            typer.Argument(
                metavar="MODEL_URI",
                help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN/PATH or a folder.",
            ),
        ],
        input: Annotated[
            str,
            typer.Argument(
                metavar="INPUT",
                help="A Parquet file, folder or glob, CSV files, or a dataset version (name@v3).",
            ),
        ],
        output: Annotated[
            str, typer.Option("--output", "-o", help="The output folder (Parquet parts).")
        ],
        executor: Annotated[
            str,
            typer.Option("--executor", help="local (this process), process (--workers) or ray."),
        ] = "local",
        workers: Annotated[
            int | None,
            typer.Option(
                "--workers",
                min=1,
                help="Processes, this one included (default: the CPUs), or Ray tasks at once.",
            ),
        ] = None,
        batch_rows: Annotated[
            int, typer.Option("--batch-rows", min=1, help="Rows per batch (the memory bound).")
        ] = 65_536,
        keep_columns: Annotated[
            list[str] | None,
            typer.Option(
                "--keep-columns", help="Input columns copied to the output (ids); repeatable."
            ),
        ] = None,
        outputs: Annotated[
            list[str] | None,
            typer.Option("--outputs", help="predict (default), predict_proba; repeatable or a,b."),
        ] = None,
        register_as: Annotated[
            str | None,
            typer.Option(
                "--register", metavar="NAME", help="Store the output as a version of dataset NAME."
            ),
        ] = None,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace an earlier output folder.")
        ] = False,
        trusted: Annotated[
            bool,
            typer.Option("--trusted", help="Allow models that unpickle data or run packaged code."),
        ] = False,
        ray_address: Annotated[
            str | None,
            typer.Option("--ray-address", help="Ray cluster for --executor ray (default: local)."),
        ] = None,
        json_output: bool = JSON_OPTION,
    ) -> None:
        """Score a model over Parquet, CSV or a dataset version, in bounded memory.

        Each batch is checked against the model's signature first. The output folder gets
        Parquet parts with the kept columns, the predictions, model and model_version; it
        appears only once every part is written.
        """
        from ..serving.batch import predict_batch

        cli = state(ctx)
        with handle_errors():
            client = _client(cli, model, input, register_as)
            try:
                # On a terminal only: elsewhere (a log, a pipe) a bar is noise.
                shown = not json_output and console(stderr=True).is_terminal
                with _progress(shown) as progress:
                    result = predict_batch(
                        client,
                        model,
                        input,
                        output,
                        executor=executor,
                        workers=workers,
                        batch_rows=batch_rows,
                        keep_columns=_split(keep_columns),
                        outputs=_split(outputs) or ("predict",),
                        register=register_as,
                        overwrite=overwrite,
                        trusted=trusted,
                        ray_address=ray_address,
                        progress=progress,
                    )
            finally:
                if client is not None:
                    client.close()
        if json_output:
            emit_json(_result_dict(result))
            return
        out = console()
        for line in _summary(result):
            out.print(line, markup=False, soft_wrap=True)


def _client(cli: CliState, model: str, input: str, register_as: str | None) -> Client | None:
    """A client when the model, the input or --register needs a store; else none (a package
    folder over files needs no store, so a missing one is no error)."""
    from ..client import Client
    from ..serving.batch import is_dataset_ref

    uri = model.split("=", 1)[-1]
    if uri.startswith(("models:", "runs:")) or register_as is not None or is_dataset_ref(input):
        return Client(cli.settings())
    dataclasses.replace(cli, command="").settings()  # the global options are still checked
    return None


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(
        part.strip() for value in values or () for part in value.split(",") if part.strip()
    )


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int | None], None]]:
    """A callback advancing the bar over rows (the total when the input's footers tell it)."""
    with progress_bar("scoring rows", None, enabled) as update:
        yield lambda rows, total: update(advance=rows, total=total)


def _summary(result: BatchResult) -> list[str]:
    model = result.model + (
        "" if result.model_version is None else f" version {result.model_version}"
    )
    speed = f"{result.rows_per_second:,.0f} rows/s" if result.seconds > 0 else ""
    lines = [
        f"scored {result.rows:,} rows of {result.input} with {model} in {result.seconds:.1f} s "
        f"({speed}; {result.executor}, {result.workers or 'auto'} worker(s))",
        f"  output: {result.output} ({result.parts} part{'s' * (result.parts != 1)})",
    ]
    if result.dataset_version is not None:
        lines.append(
            f"  registered as {result.dataset_version.ref} (run {result.run_id}, experiment "
            "batch-scoring)"
        )
    return lines


def _result_dict(result: BatchResult) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    data["output"] = str(Path(result.output))
    data["rows_per_second"] = result.rows_per_second
    version = result.dataset_version
    data["dataset_version"] = None if version is None else version.ref
    return data
