"""``evaluate`` and ``agreement``: run scorers over a dataset's rows and record the result as a
tracked run; measure a judge against human labels.

Both run where they are called (the target and the scorers are the caller's code) and store
through the service's own methods, so they are the same for an embedded and a remote client.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._numbers import is_number as is_whole_number
from ..errors import Conflict, InvalidInput
from ..tracking.entities import RunStatus
from . import _hosted, builtins
from .agreement import categorical_agreement, numeric_agreement
from .entities import (
    Agreement,
    EvalDataset,
    EvalRecord,
    EvaluationResult,
    RowResult,
    ScorerVersion,
)
from .judges import _FALSE, _TRUE, Judge
from .records import is_number, parse_records
from .scorers import Scorer
from .targets import Call, Target, precomputed, resolve_target

if TYPE_CHECKING:
    from ..tracking.protocol import Tracking
    from .protocol import Evaluation

    # The stored operations (datasets, records, scorer versions, summaries) each backend
    # provides; the mixin builds evaluate and agreement on them.
    _Stored = Evaluation
else:
    _Stored = object

__all__ = ["RESULTS_FILE", "EvaluateMixin"]

RESULTS_FILE = "eval_results.jsonl"
DEFAULT_EXPERIMENT = "evaluations"
_MAX_WORKERS = 32
_READ_TRIES = 5
_METRIC_SAFE = re.compile(r"[A-Za-z0-9_.\- ]{1,100}")


class EvaluateMixin(_Stored):
    """What both backends' evaluation services add on top of their stored operations."""

    def _run_tracking(self) -> Tracking:
        """Where evaluation runs are recorded (the client's tracking service)."""
        raise NotImplementedError

    def _server_scorer_modules(self) -> tuple[str, ...] | None:
        """In a server, the modules its code scorers may come from; None when embedded."""
        return None

    # --- scorers ----------------------------------------------------------------------------

    def register_scorer(
        self, scorer: Scorer, *, name: str | None = None, scope: str = ""
    ) -> ScorerVersion:
        """Register a scorer (code by ``module:function`` + source digest, a built-in with its
        arguments, or a judge's config); the same content again returns the same version."""
        if not isinstance(scorer, Scorer):
            raise InvalidInput(
                f"register_scorer takes a Scorer (@lw.scorer, a built-in or a Judge), not "
                f"{type(scorer).__name__}"
            )
        if scorer.kind == "code" and "<" in scorer.reference:
            raise InvalidInput(
                f"scorer {scorer.name!r} is {scorer.reference}: only module-level functions can "
                "be registered (a registered scorer is found again by module:function)"
            )
        return self.register_spec(
            name or scorer.name,
            kind=scorer.kind,
            reference=scorer.reference,
            digest=scorer.digest,
            config=scorer.config,
            scope=scope,
        )

    def load_scorer(self, ref: str | ScorerVersion, *, scope: str = "") -> Scorer:
        """The scorer of a registered version (``name`` for the newest, ``name/3``)."""
        version = ref if isinstance(ref, ScorerVersion) else self._scorer_version(ref, scope)
        hosted = self._server_scorer_modules()
        if version.kind == "builtin":
            return builtins.build(version.reference.removeprefix("builtin:"), version.config)
        if version.kind == "judge":
            if hosted is not None:
                _hosted.check_judge(version)
            return Judge.from_config(version.name, version.config)
        if version.kind == "code":
            if hosted is not None:
                _hosted.check_code_reference(version, hosted)
            module, _, attr = version.reference.partition(":")
            try:
                found: Any = importlib.import_module(module)
                for part in attr.split("."):
                    found = getattr(found, part)
            except (ImportError, AttributeError) as exc:
                raise InvalidInput(
                    f"scorer {version.ref}: cannot import {version.reference} here ({exc}); "
                    "install or put its module on sys.path"
                ) from exc
            if hosted is not None:
                loaded = _hosted.check_loaded_code(version, found, hosted)
            else:
                loaded = found if isinstance(found, Scorer) else Scorer(found, version.name)
            if loaded.digest != version.digest:
                raise Conflict(
                    f"scorer {version.ref}: the code of {version.reference} changed since it was "
                    "registered (its digest differs); register it again for a new version"
                )
            return loaded
        raise InvalidInput(
            f"scorer {version.ref} was registered through MLflow (kind {version.kind!r}); it runs "
            "in mlflow.genai.evaluate, not in Loopwright's evaluate"
        )

    def _scorer_version(self, ref: str, scope: str) -> ScorerVersion:
        name, _, number = ref.partition("/")
        if number and not is_whole_number(number):
            raise InvalidInput(f"scorer reference {ref!r} must be 'name' or 'name/<version>'")
        return self.get_scorer(name, int(number) if number else None, scope=scope)

    # --- evaluate ---------------------------------------------------------------------------

    def evaluate(
        self,
        target: Any,
        dataset: str | EvalDataset | Sequence[Mapping[str, Any]],
        scorers: Sequence[Scorer | str],
        *,
        name: str | None = None,
        experiment: str = DEFAULT_EXPERIMENT,
        max_workers: int = 4,
        require_approved: bool = False,
    ) -> EvaluationResult:
        """Run ``target`` on every row, score the rows, record an evaluation run.

        ``target``: a callable taking the inputs as keywords, a
        :class:`~loopwright.evaluation.targets.PromptTarget`, or ``None`` when the records hold
        their outputs. ``dataset``: an evaluation dataset (name, id or object; its version is
        the run's input) or a list of records (unversioned). ``scorers``: scorers, or names of
        registered ones (``"name"``, ``"name/3"``). A row whose target or scorer raises is
        recorded with the error; the evaluation goes on. ``require_approved``: every judge must
        be a registered, approved version (what a gate asks).
        """
        if not 1 <= max_workers <= _MAX_WORKERS:
            raise InvalidInput(f"max_workers must be 1..{_MAX_WORKERS}, got {max_workers}")
        call = resolve_target(target)
        records, version_id, digest, label = self._rows_of(dataset)
        chosen = self._scorers(scorers, require_approved)
        if not chosen:
            raise InvalidInput("evaluate needs at least one scorer")
        scoring = (s for s, _ in chosen.values())
        with _pooled(call, *scoring), ThreadPoolExecutor(max_workers=max_workers) as pool:
            rows = list(pool.map(lambda r: _row(call, r, chosen), records))
        aggregates = _aggregates(rows, chosen)
        described = {n: d for n, (_, d) in chosen.items()}
        run_id = self._record_run(
            name or f"eval {label}",
            call,
            rows,
            aggregates,
            described,
            version_id,
            digest,
            experiment,
        )
        result = EvaluationResult(run_id, tuple(rows), aggregates, digest, version_id, described)
        self.record_evaluation(
            run_id,
            name=name or f"eval {label}",
            target=call.name[:500],
            dataset_version_id=version_id,
            scorers=described,
            aggregates=aggregates,
            rows=len(rows),
            failed_rows=result.failed_rows,
        )
        return result

    def _rows_of(self, dataset: Any) -> tuple[list[EvalRecord], str | None, str | None, str]:
        if isinstance(dataset, EvalDataset):
            dataset = dataset.id
        if isinstance(dataset, str):
            for _ in range(_READ_TRIES):
                found = self.get_dataset(dataset)
                if found.version_id is None:
                    raise InvalidInput(f"evaluation dataset {found.name!r} has no records yet")
                records = self.records(found.id)
                # The records must be those of the version the run records as its input: a
                # change in between means reading again.
                if self.get_dataset(found.id).version_id == found.version_id:
                    return records, found.version_id, found.digest, found.ref or found.name
            raise Conflict(f"evaluation dataset {dataset!r} kept changing while it was read")
        if isinstance(dataset, Sequence) and not isinstance(dataset, bytes):
            return parse_records(dataset), None, None, f"{len(dataset)} records"
        raise InvalidInput(
            f"dataset must be an evaluation dataset (name, id, EvalDataset) or a list of records, "
            f"not {type(dataset).__name__}"
        )

    def _scorers(
        self, scorers: Sequence[Scorer | str], require_approved: bool
    ) -> dict[str, tuple[Scorer, str]]:
        chosen: dict[str, tuple[Scorer, str]] = {}
        for item in scorers:
            if isinstance(item, str):
                version = self._scorer_version(item, "")
                scorer = self.load_scorer(version)
                described = f"{version.ref} {version.kind} {version.digest[:12]}"
                if require_approved and version.kind == "judge" and not version.approved:
                    raise Conflict(
                        f"judge {version.ref} is not approved; a gate uses approved judge "
                        f"versions only (`loopwright eval scorers request-approval "
                        f"{version.name} {version.version}`)"
                    )
            elif isinstance(item, Scorer):
                scorer = item
                if require_approved and scorer.kind == "judge":
                    raise Conflict(
                        f"judge {scorer.name!r} is passed as an object; a gate needs a registered, "
                        "approved version: pass its name ('name/3')"
                    )
                described = f"{scorer.reference} {scorer.kind} {scorer.digest[:12]}"
            else:
                raise InvalidInput(
                    f"scorers must be Scorers or registered scorer names, not {type(item).__name__}"
                )
            # A registered scorer goes by its registered name (a decorated function may differ).
            key = version.name if isinstance(item, str) else scorer.name
            if key in chosen:
                raise InvalidInput(f"two scorers are named {key!r}; give one another name")
            chosen[key] = (scorer, described)
        return chosen

    def _record_run(
        self,
        name: str,
        call: Target,
        rows: list[RowResult],
        aggregates: Mapping[str, float],
        described: Mapping[str, str],
        version_id: str | None,
        digest: str | None,
        experiment: str,
    ) -> str:
        tags = {"loopwright.evaluation": "true", "loopwright.eval.target": call.name[:250]}
        if digest:
            tags["loopwright.eval.dataset_digest"] = digest
        tracking = self._run_tracking()
        run = tracking.create_run(experiment=experiment, name=name[:250], tags=tags)
        try:
            if version_id is not None:
                tracking.use_dataset(run.id, version_id, context="evaluation")
            tracking.log_params(run.id, {f"scorer.{n}"[:250]: d for n, d in described.items()})
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / RESULTS_FILE
                path.write_text("".join(json.dumps(r.to_dict(), default=str) + "\n" for r in rows))
                tracking.log_artifact(run.id, path)
            tracking.log_metrics(run.id, aggregates)
        except BaseException:
            tracking.end_run(run.id, RunStatus.FAILED)
            raise
        tracking.end_run(run.id)
        return str(run.id)

    # --- judge agreement --------------------------------------------------------------------

    def agreement(
        self,
        judge: Judge | str,
        dataset: str | EvalDataset,
        *,
        label: str | None = None,
        max_workers: int = 4,
    ) -> Agreement:
        """Run ``judge`` on the dataset's records (their ``outputs``) and compare its scores
        with the human labels in each record's expectation ``label`` (default: the judge's
        name). The figures are stored with the judge's version (registered if needed)."""
        if isinstance(judge, str):
            version = self._scorer_version(judge, "")
            loaded = self.load_scorer(version)
        elif isinstance(judge, Judge):
            loaded, version = judge, self.register_scorer(judge)
        else:
            raise InvalidInput(
                f"agreement needs a Judge or a registered judge's name, not {judge!r}"
            )
        if not isinstance(loaded, Judge):
            raise InvalidInput(f"scorer {version.ref} is a {version.kind} scorer, not a judge")
        records, version_id, digest, _ = self._rows_of(
            dataset.id if isinstance(dataset, EvalDataset) else dataset
        )
        key = label or loaded.name
        labelled = [r for r in records if key in r.expectations]
        with _pooled(loaded), ThreadPoolExecutor(max_workers=max_workers) as pool:
            scores = list(
                pool.map(
                    lambda r: loaded.score(
                        inputs=r.inputs, outputs=r.outputs, expectations=_without(r, key)
                    ),
                    labelled,
                )
            )
        pairs = [
            (f.value, _human(r.expectations[key], loaded))
            for r, f in zip(labelled, scores, strict=True)
            if f.ok
        ]
        pairs = [(j, h) for j, h in pairs if h is not None]
        judged, human = [p[0] for p in pairs], [p[1] for p in pairs]
        if loaded.output == "numeric":
            metrics = numeric_agreement([_number(j) for j in judged], [float(h) for h in human])
        else:
            metrics = categorical_agreement(judged, human)
        result = Agreement(
            judge=version.ref,
            dataset_digest=digest,
            label=key,
            n=len(pairs),
            metrics=metrics,
            skipped=len(records) - len(pairs),
        )
        if version_id is not None:
            self.record_agreement(
                version.id,
                version_id,
                key,
                {**metrics, "n": result.n, "skipped": result.skipped, "dataset_digest": digest},
            )
        return result


@contextmanager
def _pooled(*parts: Any) -> Iterator[None]:
    """Judges and prompt targets keep one HTTP client for the whole evaluation."""
    with ExitStack() as stack:
        for part in parts:
            if hasattr(part, "pooled"):
                stack.enter_context(part.pooled())
        yield


def _without(record: EvalRecord, key: str) -> dict[str, Any]:
    """The expectations a judge may see: not the human label it is measured against."""
    return {k: v for k, v in record.expectations.items() if k != key}


def _human(value: Any, judge: Judge) -> Any:
    if judge.output == "numeric":
        return float(value) if is_number(value) else None
    if judge.output == "bool":
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        return True if word in _TRUE else False if word in _FALSE else None
    return str(value)


def _row(call: Target, record: EvalRecord, scorers: Mapping[str, tuple[Scorer, str]]) -> RowResult:
    if call is precomputed:
        if record.outputs is None:
            return RowResult(
                record.record_id,
                record.inputs,
                None,
                record.expectations,
                {},
                error="the record has no outputs and no target was given",
            )
        done = Call(record.outputs)
    else:
        try:
            done = call(record.inputs)
        except Exception as exc:  # the target's failure is this row's, not the evaluation's
            return RowResult(
                record.record_id,
                record.inputs,
                None,
                record.expectations,
                {},
                error=f"{type(exc).__name__}: {exc}",
            )
    scores = {
        name: scorer.score(
            inputs=record.inputs,
            outputs=done.outputs,
            expectations=record.expectations,
            trace=done,
        )
        for name, (scorer, _) in scorers.items()
    }
    return RowResult(
        record.record_id,
        record.inputs,
        done.outputs,
        record.expectations,
        scores,
        done.duration_ms,
    )


def _aggregates(rows: Sequence[RowResult], scorers: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {
        "rows": float(len(rows)),
        "failed_rows": float(
            sum(1 for r in rows if r.error or any(not f.ok for f in r.scores.values()))
        ),
        "target_errors": float(sum(1 for r in rows if r.error)),
    }
    latencies = [r.latency_ms for r in rows if r.latency_ms is not None]
    if latencies:
        out["latency_ms/mean"] = sum(latencies) / len(latencies)
    for name in scorers:
        given = [r.scores[name] for r in rows if name in r.scores]
        values = [f.value for f in given if f.ok]
        out[f"{name}/errors"] = float(sum(1 for f in given if not f.ok))
        numbers = [_number(v) for v in values if isinstance(v, bool) or is_number(v)]
        if numbers and len(numbers) == len(values):
            out[f"{name}/mean"] = sum(numbers) / len(numbers)
        labels = [v for v in values if isinstance(v, str)]
        for each in sorted(set(labels)):
            if _METRIC_SAFE.fullmatch(each):
                out[f"{name}/{each}"] = labels.count(each) / len(labels)
    return {k: v for k, v in out.items() if math.isfinite(v)}


def _number(value: Any) -> float:
    return float(value)
