"""Model flavors: which flavor stores a given model, and where to find a flavor by name.

Built-in flavors: ``xgboost``, ``lightgbm``, ``onnx``, ``sklearn`` (skops), ``pyfunc`` (a Python
class with ``predict``, stored as source code plus JSON state) and ``mlflow_pyfunc`` (MLflow
python-function models, only made by ``mlflow_import.convert_mlflow_model``).
Other packages add flavors through the ``loopwright.flavors`` entry-point group, each entry
naming a :class:`Flavor` instance or class; they are loaded on first use.

When saving, flavors are asked in order whether they handle the model: flavors added by
:func:`register_flavor` or entry points first, then the built-ins from the most specific
(xgboost and lightgbm models are also scikit-learn estimators) to ``pyfunc``, which takes any
object with ``predict`` defined in user code.

Example:
    >>> get_flavor("sklearn").name
    'sklearn'
    >>> flavor_for(object())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    loopwright.errors.InvalidInput: no model flavor handles object ...
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from typing import Any

from ...._logging import get_logger
from ....errors import InvalidInput, NotFound
from ._protocol import Flavor as Flavor

__all__ = [
    "ENTRY_POINT_GROUP",
    "Flavor",
    "available_flavors",
    "flavor_for",
    "get_flavor",
    "register_flavor",
    "unregister_flavor",
]

ENTRY_POINT_GROUP = "loopwright.flavors"
_BUILTIN = {
    "xgboost": "xgboost:XGBoostFlavor",
    "lightgbm": "lightgbm:LightGBMFlavor",
    "onnx": "onnx:OnnxFlavor",
    "sklearn": "sklearn:SklearnFlavor",
    "mlflow_pyfunc": "mlflow_pyfunc:MlflowPyfuncFlavor",
    "pyfunc": "pyfunc:PyfuncFlavor",
}
_logger = get_logger(__name__)


class _Registry:
    """Flavors by name: added ones (explicit, then entry points) and the built-ins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entry_point_lock = threading.Lock()
        self._added: dict[str, Flavor] = {}
        self._builtin: dict[str, Flavor] = {}
        self._entry_points_loaded = False

    def ordered(self) -> list[Flavor]:
        self._load_entry_points()
        with self._lock:
            added = list(self._added.values())
        return added + [self.builtin(name) for name in _BUILTIN if name not in self._added]

    def get(self, name: str) -> Flavor | None:
        self._load_entry_points()
        with self._lock:
            found = self._added.get(name)
        if found is None and name in _BUILTIN:
            found = self.builtin(name)
        return found

    def builtin(self, name: str) -> Flavor:
        with self._lock:
            if name not in self._builtin:
                module, _, attr = _BUILTIN[name].partition(":")
                cls = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
                self._builtin[name] = cls()
            return self._builtin[name]

    def add(self, flavor: Flavor, *, replace: bool) -> None:
        if not isinstance(flavor, Flavor):
            raise InvalidInput(
                f"{flavor!r} is not a flavor: it needs name, uses_pickle, executes_code, handles, "
                "save, load, predict, libraries and signature (see flavors._protocol.Flavor)"
            )
        with self._lock:
            if not replace and flavor.name in self._added:
                raise InvalidInput(
                    f"flavor {flavor.name!r} is already registered; pass replace=True to swap it"
                )
            self._added[flavor.name] = flavor

    def remove(self, name: str) -> None:
        with self._lock:
            if self._added.pop(name, None) is None:
                raise NotFound(f"no flavor {name!r} was registered; nothing to remove")

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        with self._entry_point_lock:
            if self._entry_points_loaded:
                return
            for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                try:
                    loaded: Any = entry.load()
                    flavor = loaded() if isinstance(loaded, type) else loaded
                    self.add(flavor, replace=False)
                except Exception as exc:  # a broken plugin must not break the other flavors
                    _logger.warning("skipping flavor entry point %r: %r", entry.value, exc)
            self._entry_points_loaded = True


_registry = _Registry()


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``.

    Raises:
        NotFound: no built-in, registered or entry-point flavor has that name.
    """
    flavor = _registry.get(name)
    if flavor is None:
        raise NotFound(
            f"no model flavor {name!r}; available: {', '.join(available_flavors())}. Install "
            f"the package that provides it (entry-point group {ENTRY_POINT_GROUP!r})"
        )
    return flavor


def flavor_for(model: Any) -> Flavor:
    """The first flavor that handles ``model`` (see the module docstring for the order).

    Raises:
        InvalidInput: no flavor handles it.
    """
    for flavor in _registry.ordered():
        if flavor.handles(model):
            return flavor
    cls = type(model)
    raise InvalidInput(
        f"no model flavor handles {cls.__qualname__} (from {cls.__module__}); flavors: "
        f"{', '.join(available_flavors())}. Pass flavor=..., or wrap the model in a class with "
        "a predict method defined in your own module (the pyfunc flavor)"
    )


def register_flavor(flavor: Flavor, *, replace: bool = False) -> None:
    """Add a flavor; it is asked before the built-ins whether it handles a model."""
    _registry.add(flavor, replace=replace)


def unregister_flavor(name: str) -> None:
    """Remove a flavor added by :func:`register_flavor` (built-ins stay)."""
    _registry.remove(name)


def available_flavors() -> tuple[str, ...]:
    """Names of every flavor, in the order they are asked whether they handle a model."""
    return tuple(flavor.name for flavor in _registry.ordered())
