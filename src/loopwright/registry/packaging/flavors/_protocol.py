"""The protocol every model flavor implements, and small helpers flavors share.

A flavor turns one kind of model into files and back: ``save`` writes the model into a folder
and returns the options ``load`` needs; ``load`` reads the folder into the library's own object
(the "native" model); ``predict`` runs it. A flavor imports its library inside these methods, so
that registering it, or asking it whether it ``handles`` a model, stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ....errors import InvalidModelPackage
from ....paths import safe_join

if TYPE_CHECKING:
    from ..signature import Signature

__all__ = ["Flavor", "defined_in", "option", "package_file"]


@runtime_checkable
class Flavor(Protocol):
    """A way of storing and loading one kind of model.

    Attributes:
        name: the name written in package manifests (``[a-z][a-z0-9_]*``).
        uses_pickle: loading this flavor's packages unpickles data.
        executes_code: loading this flavor's packages imports code shipped in the package.
    """

    name: str
    uses_pickle: bool
    executes_code: bool

    def handles(self, model: Any) -> bool:
        """Whether ``save`` can store ``model``. Must not import the flavor's library."""
        ...

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        """Write ``model`` into the (existing) ``folder``; return JSON options for ``load``."""
        ...

    def load(self, folder: Path, options: Mapping[str, Any], *, trusted: bool) -> Any:
        """Read the native model back. ``options`` come from an untrusted manifest.

        Flavors that unpickle or import code must refuse unless ``trusted`` (defence in depth:
        ``load_package`` checks first).
        """
        ...

    def predict(self, native: Any, data: Any) -> Any:
        """Run the native model (or the model given to ``save``) on already-validated data."""
        ...

    def libraries(self) -> dict[str, str]:
        """Versions of the libraries a package of this flavor needs, by distribution name."""
        ...

    def signature(self, model: Any) -> Signature | None:
        """The signature the model itself declares (e.g. ONNX graph inputs), if any."""
        ...


def defined_in(model: object, package: str) -> bool:
    """Whether the class of ``model`` or one of its bases comes from ``package``.

    This asks without importing ``package``, so ``handles`` stays cheap.

    Example:
        >>> from collections import OrderedDict
        >>> defined_in(OrderedDict(), "collections"), defined_in(1, "collections")
        (True, False)
    """
    return any(
        getattr(cls, "__module__", "").partition(".")[0] == package for cls in type(model).__mro__
    )


def option(options: Mapping[str, Any], key: str, kind: type, flavor: str) -> Any:
    """``options[key]`` checked to be a ``kind``, as manifests are untrusted."""
    value = options.get(key)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise InvalidModelPackage(
            f"the {flavor} flavor options need {key!r} as {kind.__name__}, got {value!r}; "
            "the package manifest is damaged, so rebuild the package"
        )
    return value


def package_file(folder: Path, options: Mapping[str, Any], key: str, flavor: str) -> Path:
    """The file of the package that ``options[key]`` names, refusing paths that leave it.

    Raises:
        UnsafePath: the manifest names a path outside the package (an attack, not an accident).
    """
    value = option(options, key, str, flavor)
    return safe_join(folder, value, what=f"{flavor} flavor option {key!r}")
