"""scikit-learn autologging: ``lw.autolog()`` records every ``fit`` as a run.

The ``fit`` of every scikit-learn estimator is wrapped (once per class that defines it). Only the
outermost fit logs: the fits a Pipeline, a search or an ensemble makes inside it do not, even
those that joblib runs on worker threads, since "inside a fit" is tracked per process, not per
thread. The price: when user threads fit independent models at the same time, only the fit that
started first logs.

A fit logs to the active run if there is one, else to a run of its own (named after the
estimator, in ``experiment``) that ends FINISHED, or FAILED when the fit raises. It logs:

- params: ``get_params(deep=False)``, values as strings of at most 500 characters. In a run it
  did not start, a key the run already holds with another value is skipped (params are
  immutable), so two fits in one explicit run keep the first fit's value;
- metrics on the training data, named like MLflow's: ``training_accuracy_score``,
  ``training_precision_score``, ``training_recall_score``, ``training_f1_score`` (weighted),
  ``training_log_loss`` (with ``predict_proba``), ``training_roc_auc`` (binary) for
  classifiers; ``training_mean_squared_error``, ``training_root_mean_squared_error``,
  ``training_mean_absolute_error``, ``training_r2_score`` for regressors; ``fit_duration_s``;
- the model as a package under ``model/`` (``model.skops``, skops, never pickle, and the
  manifest ``loopwright-model.json`` with the signature inferred from the first rows of X), so
  ``lw.load_model(f"runs:/{run.id}/model")`` loads it back.

A failure to log never breaks the fit: it is reported once per kind as an
:class:`AutologWarning`, later ones at DEBUG level.

Example:
    >>> from sklearn.linear_model import LinearRegression
    >>> import loopwright as lw
    >>> from loopwright.tracking.autolog import autolog
    >>> client = lw.connect(home="lw-doc-autolog")
    >>> autolog(client_factory=lambda: client, log_models=False)
    >>> model = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
    >>> autolog(disable=True)
    >>> client.list_runs("Default")[0].params["fit_intercept"]
    'True'
"""

from __future__ import annotations

import functools
import inspect
import math
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._logging import get_logger
from .._run_stack import active_run
from ..errors import TrackingError

if TYPE_CHECKING:
    from ..client import Client
    from .active_run import ActiveRun

__all__ = ["MAX_PARAM_LENGTH", "AutologWarning", "autolog"]

MAX_PARAM_LENGTH = 500
_METHOD = "fit"
_MODEL_DIR = "model"
_logger = get_logger(__name__)


class AutologWarning(UserWarning):
    """Autologging could not record something about a fit; the fit itself went through."""


@dataclass(frozen=True)
class _Config:
    client_factory: Callable[[], Client] | None
    log_models: bool
    experiment: str


# Autologging is process-wide by nature (it patches classes): this is its whole state.
_lock = threading.Lock()
_config: _Config | None = None
_originals: dict[type, Callable[..., Any]] = {}
_fits_in_progress = 0
_warned: set[str] = set()


def autolog(
    *,
    client_factory: Callable[[], Client] | None = None,
    log_models: bool = True,
    disable: bool = False,
    experiment: str = "Default",
) -> None:
    """Log every scikit-learn ``fit`` from now on (``disable=True`` undoes it).

    Args:
        client_factory: the client for runs autologging starts itself; with ``None`` a fit
            logs only into the active run (``lw.autolog`` passes the default client).
        log_models: save each fitted estimator with skops under ``model/``.
        disable: restore the original ``fit`` methods and stop logging.
        experiment: where runs that autologging starts itself go.

    Raises:
        ImportError: scikit-learn (or skops, with ``log_models``) is not installed.
    """
    global _config
    with _lock:
        if disable:
            for owner, original in _originals.items():
                setattr(owner, _METHOD, original)
            _originals.clear()
            _config = None
            return
        _require("sklearn", "scikit-learn")
        if log_models:
            _require("skops", "skops")
        _config = _Config(client_factory, log_models, experiment)
        _warned.clear()
        if not _originals:
            _patch_all()


def _require(module: str, distribution: str) -> None:
    try:
        __import__(module)
    except ImportError as exc:
        raise ImportError(
            f"autolog needs {distribution}, which is not installed: "
            "pip install 'loopwright[sklearn]'"
        ) from exc


# Helpers that scikit-learn's own metrics fit internally (roc_auc_score fits a LabelBinarizer):
# logging them would add a stray fit to the user's run.
_INTERNAL_MODULES = ("sklearn.preprocessing._label",)


def _patch_all() -> None:
    from sklearn.utils import all_estimators

    for _, cls in all_estimators():
        if cls.__module__.startswith(_INTERNAL_MODULES):
            continue
        # Patch the class that defines the fit, so subclasses inheriting it are covered too.
        owner = next((k for k in cls.__mro__ if _METHOD in vars(k)), None)
        if owner is None or owner in _originals or not owner.__module__.startswith("sklearn"):
            continue
        original = vars(owner)[_METHOD]
        if inspect.isfunction(original):
            _originals[owner] = original
            setattr(owner, _METHOD, _wrap(original))


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        global _fits_in_progress
        config = _config
        with _lock:
            outermost = config is not None and _fits_in_progress == 0
            _fits_in_progress += 1
        try:
            if not outermost or config is None:
                return original(self, *args, **kwargs)
            return _fit_and_log(config, original, self, args, kwargs)
        finally:
            with _lock:
                _fits_in_progress -= 1

    return fit


def _fit_and_log(
    config: _Config,
    original: Callable[..., Any],
    estimator: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    run, owned = _open_run(config, estimator)
    if run is None:
        return original(estimator, *args, **kwargs)
    started = time.perf_counter()
    try:
        result = original(estimator, *args, **kwargs)
    except BaseException as exc:
        if owned:
            _guard("end the run", run.__exit__, type(exc), exc, exc.__traceback__)
        raise
    duration = time.perf_counter() - started
    _guard("log params", _log_params, run, estimator, owned)
    _guard("log training metrics", _log_metrics, run, estimator, original, args, kwargs, duration)
    if config.log_models:
        _guard("save the model", _log_model, run, estimator, args, kwargs)
    if owned:
        _guard("end the run", run.__exit__, None, None, None)
    return result


def _open_run(config: _Config, estimator: Any) -> tuple[ActiveRun | None, bool]:
    """The run to log to and whether this fit started it; ``(None, False)`` if none is usable."""
    try:
        current = active_run()
        if current is not None:
            return current, False
        if config.client_factory is None:
            raise TrackingError(
                "no active run to log the fit to, and no client to start one: pass "
                "client_factory=, or turn autologging on with lw.autolog() (the default client)"
            )
        client = config.client_factory()
        return client.start_run(experiment=config.experiment, name=type(estimator).__name__), True
    except Exception as exc:
        _warn_once("start a run", exc)
        return None, False


def _guard(action: str, fn: Callable[..., object], *args: Any) -> None:
    try:
        fn(*args)
    except Exception as exc:
        _warn_once(action, exc)


def _warn_once(action: str, exc: Exception) -> None:
    if action in _warned:
        _logger.debug("autolog could not %s: %r", action, exc)
        return
    _warned.add(action)
    warnings.warn(
        f"loopwright autolog could not {action} ({type(exc).__name__}: {exc}); the fit itself "
        "is unaffected. Further failures of this kind are logged at DEBUG level only.",
        AutologWarning,
        stacklevel=5,  # the user's call of fit
    )


def _param_str(value: object) -> str:
    text = str(value)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."


def _log_params(run: ActiveRun, estimator: Any, owned: bool) -> None:
    params = {key: _param_str(v) for key, v in estimator.get_params(deep=False).items()}
    if not owned:
        logged = run.info().params
        clashing = [k for k, v in params.items() if logged.get(k, v) != v]
        if clashing:
            _logger.info("autolog keeps the run's earlier values of params %s", clashing)
        params = {k: v for k, v in params.items() if k not in clashing}
    if params:
        run.log_params(params)


def _fit_data(
    original: Callable[..., Any], estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, Any, Any]:
    """``X``, ``y`` and ``sample_weight`` as passed to ``fit`` (``None`` when absent)."""
    try:
        bound = inspect.signature(original).bind(estimator, *args, **kwargs).arguments
    except TypeError:
        bound = {}
    nested = bound.get("kwargs") or bound.get("fit_params") or {}
    positional = [*args, None, None]
    x = bound.get("X", positional[0])
    y = bound.get("y", bound.get("Y", positional[1]))
    return x, y, bound.get("sample_weight", nested.get("sample_weight"))


def _log_metrics(
    run: ActiveRun,
    estimator: Any,
    original: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    duration: float,
) -> None:
    metrics = {"fit_duration_s": duration}
    x, y, weight = _fit_data(original, estimator, args, kwargs)
    if x is not None and y is not None:
        metrics.update(_training_metrics(estimator, x, y, weight))
    run.log_metrics(metrics)


def _training_metrics(estimator: Any, x: Any, y: Any, weight: Any) -> dict[str, float]:
    from sklearn import metrics as m
    from sklearn.base import is_classifier, is_regressor

    found: dict[str, float] = {}

    def add(name: str, compute: Callable[[], float]) -> None:
        # A metric that does not apply (multi-output targets, odd labels) is left out quietly.
        try:
            value = float(compute())
        except (ValueError, TypeError, IndexError) as exc:
            _logger.debug("autolog skips %s: %r", name, exc)
            return
        if not math.isnan(value):
            found[f"training_{name}"] = value

    if is_classifier(estimator):
        pred = estimator.predict(x)
        add("accuracy_score", lambda: m.accuracy_score(y, pred, sample_weight=weight))
        for name, score in (
            ("precision_score", m.precision_score),
            ("recall_score", m.recall_score),
            ("f1_score", m.f1_score),
        ):
            add(
                name,
                functools.partial(
                    score, y, pred, average="weighted", sample_weight=weight, zero_division=0
                ),
            )
        if hasattr(estimator, "predict_proba"):
            proba = estimator.predict_proba(x)
            classes = estimator.classes_
            add("log_loss", lambda: m.log_loss(y, proba, labels=classes, sample_weight=weight))
            if len(classes) == 2:
                add("roc_auc", lambda: m.roc_auc_score(y, proba[:, 1], sample_weight=weight))
    elif is_regressor(estimator):
        pred = estimator.predict(x)
        add("mean_squared_error", lambda: m.mean_squared_error(y, pred, sample_weight=weight))
        if "training_mean_squared_error" in found:
            mse = found["training_mean_squared_error"]
            add("root_mean_squared_error", lambda: math.sqrt(mse))
        add("mean_absolute_error", lambda: m.mean_absolute_error(y, pred, sample_weight=weight))
        add("r2_score", lambda: m.r2_score(y, pred, sample_weight=weight))
    return found


def _log_model(run: ActiveRun, estimator: Any, args: tuple[Any, ...], kwargs: Any) -> None:
    """Package the fitted estimator (skops, no pickle) with the first rows of X as its example."""
    x = args[0] if args else kwargs.get("X")
    example = None
    if hasattr(estimator, "predict") and type(x).__name__ in ("ndarray", "DataFrame"):
        example = x[:5]  # the signature is inferred from it and the model's output
    run.log_model(estimator, _MODEL_DIR, flavor="sklearn", input_example=example)
