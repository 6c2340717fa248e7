"""The public entry: ``connect()`` returns a Client over the embedded store or a server.

Example:
    >>> import loopwright as lw
    >>> client = lw.connect(home="lw-doc-client")
    >>> with client.start_run(experiment="churn", name="rf-1") as run:
    ...     run.log_params({"n_estimators": 200})
    ...     run.log_metric("auc", 0.91)
    >>> client.get_run(run.id).params["n_estimators"]
    '200'
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .config import Settings, resolve_settings

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    import pandas as pd

    from ._backend import Backend
    from .data.protocol import Datasets
    from .evaluation.protocol import Evaluation
    from .features.protocol import Features
    from .gateway.protocol import Gateway
    from .governance.protocol import Audit, Users
    from .loop.protocol import Gates, Loops, Schedules
    from .monitoring.entities import LabelImport
    from .monitoring.protocol import Monitoring
    from .pipelines.protocol import Pipelines
    from .prompts.cache import CachedPrompts
    from .registry.model_logging import ModelInfo
    from .registry.packaging.loaded import LoadedModel
    from .registry.packaging.signature import Signature
    from .registry.protocol import Registry
    from .serving._prediction_protocol import Predictions
    from .serving.batch import BatchResult
    from .serving.protocol import Deployments
    from .store.audit import AuditEvent, ChainReport
    from .store.home import Store
    from .tracing.protocol import Tracing
    from .tracking import ActiveRun, Artifact, Experiment, Metric, Run, RunList
    from .tracking.protocol import Tracking

__all__ = ["Client", "connect"]


class Client:
    """Loopwright's services behind one object. Build it with :func:`connect`.

    The backend is chosen once, here: embedded, the services work on the stores directly; with
    a server URI they are the :mod:`loopwright.remote` classes. Both implement the protocols of
    each capability (``loopwright.tracking.protocol`` ...), return the same entities and raise
    the same errors.
    """

    def __init__(self, settings: Settings) -> None:
        from ._logging import configure_logging

        configure_logging(settings.log_level)
        self.settings = settings
        self._backend: Backend
        self._prompts: CachedPrompts | None = None
        if settings.is_embedded:
            from ._backend import Embedded

            self._backend = Embedded(settings)
        else:
            from .remote import Remote

            self._backend = Remote(settings)

    @property
    def is_remote(self) -> bool:
        """True when this client talks to a Loopwright server rather than the stores."""
        return not self.settings.is_embedded

    @property
    def store(self) -> Store:
        """The metadata database and blob store (``NotOnRemote`` for a server's client)."""
        return self._backend.store

    @property
    def tracking(self) -> Tracking:
        """Experiments, runs, metrics and artifacts (most calls have a shortcut below)."""
        return self._backend.tracking

    @property
    def datasets(self) -> Datasets:
        """Dataset versions: ``client.datasets.add("transactions", "data/", message=...)``."""
        return self._backend.datasets

    @property
    def registry(self) -> Registry:
        """Registered models, versions, aliases, stages and approvals."""
        return self._backend.registry

    @property
    def deployments(self) -> Deployments:
        """Deployments: named endpoints and their traffic policies (canary, A/B, shadow)."""
        return self._backend.deployments

    @property
    def prediction_log(self) -> Predictions:
        """The prediction log: ``read`` it, list its ``deployments``, ``compact``, ``prune``.

        Embedded, the log at ``serving.prediction_log.log_location`` (the ``prediction_log``
        setting, else the blob store's ``predictions/``); with a server, the server's log.
        """
        return self._backend.prediction_log

    @property
    def monitoring(self) -> Monitoring:
        """Monitors of deployments (drift, data quality, performance), references, late labels,
        variant comparison and alerts; ``compare(ref, cur)`` for two frames."""
        return self._backend.monitoring

    @property
    def features(self) -> Features:
        """The feature store: definitions (``apply``, ``list``, ``get``, ``diff``), point-in-time
        training sets (``get_historical_features``), the online store (``materialize``,
        ``push``, ``get_online_features``, ``freshness``) and ``skew`` checks."""
        return self._backend.features

    @property
    def tracing(self) -> Tracing:
        """LLM traces: ``record`` spans, ``get``/``search`` traces, tags, links to prompt
        versions/runs/deployments, and assessments (feedback and expectations)."""
        return self._backend.tracing

    @property
    def gateway(self) -> Gateway:
        """The LLM gateway's routes (targets, traffic split, fallbacks, limits, guardrails),
        encrypted secrets (shown masked) and usage; the server answers OpenAI's API on them."""
        return self._backend.gateway

    @property
    def evaluation(self) -> Evaluation:
        """Evaluation datasets (records versioned as dataset versions), registered scorers and
        LLM judges (versions, approval), ``evaluate(target, dataset, scorers)`` recording an
        evaluation run, and a judge's ``agreement`` with human labels."""
        return self._backend.evaluation

    @property
    def prompts(self) -> CachedPrompts:
        """Prompt templates as registry items: ``register``, ``load("prompts:/name@alias")``
        (cached: versions forever, aliases 60 s), ``format``, aliases under approval, ``diff``."""
        if self._prompts is None:
            from .prompts.cache import CachedPrompts

            self._prompts = CachedPrompts(self._backend.prompts)
        return self._prompts

    @property
    def pipelines(self) -> Pipelines:
        """Pipeline runs and their step runs (what ``@pipeline`` / ``@step`` record):
        ``get_run``, ``list_runs``; the engine records through the rest."""
        return self._backend.pipelines

    @property
    def schedules(self) -> Schedules:
        """Schedules: what starts a pipeline or a loop's iteration (cron, interval, drift and
        other alerts, new dataset versions); ``loopwright.loop.scheduler.Scheduler`` fires them."""
        return self._backend.schedules

    @property
    def gates(self) -> Gates:
        """Evaluation gate results: ``record`` (``loopwright.loop.gates.evaluate_gate`` does),
        ``get`` and ``results(model=..., version=...)``."""
        return self._backend.gates

    @property
    def loops(self) -> Loops:
        """Continuous-training loops and their iterations (train, gate, approve, canary,
        compare, promote or roll back); ``loopwright.loop.driver.advance_all`` moves them."""
        return self._backend.loops

    @property
    def users(self) -> Users:
        """Users and their roles (viewer, editor, approver, admin); approvals check them."""
        return self._backend.users

    @property
    def audit(self) -> Audit:
        """The hash-chained audit log: ``client.audit.events(...)``, ``client.audit.verify()``."""
        return self._backend.audit

    def load_model(self, uri: str, *, trusted: bool = False) -> LoadedModel:
        """Load ``models:/name@alias``, ``models:/name/3`` or ``runs:/<id>/model``.

        ``trusted=True`` is needed for packages that unpickle data or run packaged code.
        """
        from .registry.loading import load_model

        return load_model(uri, trusted=trusted, client=self)

    def audit_events(
        self,
        *,
        subject_type: str | None = None,
        subject_id: str | None = None,
        actor: str | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Audit events, oldest first (the newest ``limit``), optionally filtered."""
        return self.audit.events(
            subject_type=subject_type, subject_id=subject_id, actor=actor, limit=limit
        )

    def verify_audit(self) -> ChainReport:
        """Recompute the audit log's hash chain; ``ok`` is False at the first tampered event."""
        return self.audit.verify()

    def predictions(
        self,
        deployment: str,
        *,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
    ) -> pd.DataFrame:
        """The prediction log of ``deployment``: one row per input row, oldest first.

        ``since`` / ``until`` are datetimes (naive ones are UTC) or a timedelta before now
        (``since=timedelta(hours=1)``). Embedded, reads where ``loopwright serve`` on this
        store writes (``serving.prediction_log.log_location``); with a server, the server's
        log (a read past its row cap: ``client.prediction_log.read(..., limit=N)``).
        """
        return self.prediction_log.read(deployment, since=since, until=until)

    def log_labels(
        self, deployment: str, labels: Mapping[str, object] | pd.DataFrame
    ) -> LabelImport:
        """Store late labels for ``deployment``'s logged predictions: ``{request_id: label}``
        or a frame with ``request_id``, ``label`` and optionally ``row``; joined to the
        prediction log by request id (``client.monitoring.performance(deployment)``)."""
        return self.monitoring.log_labels(deployment, labels)

    def predict_batch(
        self,
        model_uri: str,
        input: str | os.PathLike[str],
        output: str | os.PathLike[str],
        *,
        executor: str = "local",
        workers: int | None = None,
        batch_rows: int = 65_536,
        keep_columns: Sequence[str] = (),
        outputs: Sequence[str] = ("predict",),
        register: str | None = None,
        overwrite: bool = False,
        trusted: bool = False,
        ray_address: str | None = None,
    ) -> BatchResult:
        """Score Parquet, CSV or a dataset version (``name@v3``) into Parquet parts at ``output``.

        Streams bounded record batches, checks each against the signature, runs on
        ``executor`` ``local``, ``process`` (``workers`` processes) or ``ray``; ``register``
        stores the output as a dataset version with lineage. See
        :func:`loopwright.serving.batch.predict_batch`.
        """
        from .serving.batch import predict_batch

        return predict_batch(
            self,
            model_uri,
            input,
            output,
            executor=executor,
            workers=workers,
            batch_rows=batch_rows,
            keep_columns=keep_columns,
            outputs=outputs,
            register=register,
            overwrite=overwrite,
            trusted=trusted,
            ray_address=ray_address,
        )

    def close(self) -> None:
        """Write buffered metrics, stop the writer and release connections."""
        self._backend.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self._backend!r})"

    # Tracking shortcuts: the calls people make most, so `client.start_run(...)` reads well.

    def start_run(
        self,
        experiment: str = "Default",
        name: str | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        nested: bool = False,
        parent_run_id: str | None = None,
        log_system_metrics: bool = False,
        system_metrics_interval: float = 10.0,
    ) -> ActiveRun:
        """Start a run and make it the active run (``lw.log_metric`` and autologging use it).

        Use it as a context manager to end it FINISHED, or FAILED on an exception. With
        ``nested=True`` the active run becomes the parent. ``log_system_metrics`` samples CPU and
        memory every ``system_metrics_interval`` seconds as ``system/*`` metrics.
        """
        from ._run_stack import active_run, pop_run, push_run
        from .tracking import ActiveRun

        parent = active_run()
        if nested and parent_run_id is None and parent is not None:
            parent_run_id = parent.id
        run = self.tracking.create_run(
            experiment=experiment, name=name, tags=tags, parent_run_id=parent_run_id
        )
        handle = ActiveRun(self.tracking, run, on_end=pop_run, model_logger=self._log_model)
        push_run(handle, nested=nested or parent_run_id is not None)
        self.tracking.writer.track(run.id)
        if log_system_metrics:
            from .tracking.system_metrics import SystemMetricsSampler

            sampler = SystemMetricsSampler(
                lambda metrics, step: handle.log_metrics(metrics, step=step),
                interval_s=system_metrics_interval,
            )
            sampler.start()
            handle.call_before_end(sampler.stop)
        return handle

    def _log_model(
        self,
        tracking: Tracking,
        run_id: str,
        model: Any,
        name: str = "model",
        *,
        input_example: Any = None,
        signature: Signature | Literal["infer"] | None = "infer",
        flavor: str | None = None,
        code_paths: Sequence[str] | None = None,
        registered_model_name: str | None = None,
    ) -> ModelInfo:
        """``run.log_model`` of this client's runs: registers in this client's registry."""
        from .registry.model_logging import log_model

        return log_model(
            tracking,
            run_id,
            model,
            name,
            input_example=input_example,
            signature=signature,
            flavor=flavor,
            code_paths=code_paths,
            registered_model_name=registered_model_name,
            registry=None if registered_model_name is None else self.registry,
        )

    def get_run(self, run_id: str) -> Run:
        return self.tracking.get_run(run_id)

    def list_runs(self, experiment: str | None = None, *, limit: int = 100) -> list[Run]:
        return self.tracking.list_runs(experiment=experiment, limit=limit)

    def search_runs(
        self,
        filter_string: str = "",
        *,
        experiments: Sequence[str] | None = None,
        order_by: Sequence[str] = (),
        max_results: int = 1000,
        page_token: str | None = None,
        run_view_type: str = "ACTIVE_ONLY",
    ) -> RunList:
        """Runs matching an MLflow-syntax filter; ``.to_pandas()`` gives a DataFrame.

        Example: ``client.search_runs("metrics.auc > 0.9 and params.model = 'rf'",
        order_by=["metrics.auc DESC"])``.
        """
        return self.tracking.search_runs(
            filter_string,
            experiments=experiments,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            run_view_type=run_view_type,
        )

    def list_experiments(self) -> list[Experiment]:
        return self.tracking.list_experiments()

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self.tracking.metric_history(run_id, key)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[Artifact]:
        return self.tracking.list_artifacts(run_id, path)

    def download_artifacts(
        self, run_id: str, dst: str | os.PathLike[str], path: str | None = None
    ) -> Path:
        return self.tracking.download_artifacts(run_id, dst, path)


def connect(
    uri: str | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    token: str | None = None,
    user: str | None = None,
) -> Client:
    """A client on the embedded store (no ``uri``), a database URL, or a server URL.

    With ``http(s)://host:port`` (or ``LOOPWRIGHT_SERVER_URI``) the client talks to a Loopwright
    server with the API ``token`` (``LOOPWRIGHT_TOKEN``); the methods are the same. ``user`` is
    who an embedded client's changes (registrations, approvals) are recorded as (default: the
    operating-system user); a server records the token's user instead. Settings not given here
    come from the environment, ``loopwright.toml`` and defaults.
    """
    server_uri = db_uri = None
    if uri is not None:
        if uri.startswith(("http://", "https://")):
            server_uri = uri
        else:
            db_uri = uri
    return Client(
        resolve_settings(home=home, db_uri=db_uri, server_uri=server_uri, token=token, user=user)
    )
