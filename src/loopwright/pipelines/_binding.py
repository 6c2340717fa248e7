"""A step call bound to its signature and keyed, and the values this run's steps returned.

Arguments split into *inputs*, values an earlier step of this run returned (known by identity,
so not hashed again: their stored digest, and lineage to the step run that made them), and
*parameters*, everything else, hashed by value by the materializers. A map's result list passed
on whole keeps its items' refs. The cache key is made of the code fingerprint and both
(``_keys.py``).
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from blake3 import blake3

from ..errors import StepFailed
from . import fingerprint, materializers
from ._keys import KeyParts, cache_key, short_value
from .entities import ArtifactRef

if TYPE_CHECKING:
    from .step import Step

__all__ = ["Call", "Values", "bind"]


class Values:
    """Values the steps of this run returned, by identity, with their stored refs.

    The value is held with its ref so its ``id`` cannot be reused by another object during the
    run. Scalars (None, bool, numbers, str, bytes) are left out: Python shares equal ones (small
    ints, interned strings), so identity would take a literal for a step's output; they are
    hashed by value as parameters instead.
    """

    def __init__(self) -> None:
        self._refs: dict[int, tuple[object, ArtifactRef]] = {}
        self._lists: dict[int, tuple[object, tuple[Any, ...], list[ArtifactRef]]] = {}
        self._lock = threading.Lock()

    def add(self, value: object, ref: ArtifactRef) -> None:
        if _is_scalar(value):
            return
        with self._lock:
            self._refs[id(value)] = (value, ref)

    def ref_of(self, value: object) -> ArtifactRef | None:
        if _is_scalar(value):
            return None
        found = self._refs.get(id(value))
        return None if found is None or found[0] is not value else found[1]

    def add_list(self, value: list[Any], items: Sequence[Sequence[ArtifactRef]]) -> None:
        """A map's result list: a later step taking it takes each item's outputs as inputs."""
        with self._lock:
            self._lists[id(value)] = (value, tuple(value), [r for refs in items for r in refs])

    def refs_of_list(self, value: object) -> list[ArtifactRef] | None:
        """The item refs of a map's result list, unless items were added, removed or replaced
        since (then it is hashed by value like any list)."""
        found = self._lists.get(id(value))
        if found is None or found[0] is not value or not isinstance(value, list):
            return None
        _, items, refs = found
        same = len(value) == len(items) and all(a is b for a, b in zip(value, items, strict=True))
        return refs if same else None

    def add_result(self, value: object, refs: Sequence[ArtifactRef]) -> None:
        if len(refs) == 1 and "." not in refs[0].name:
            self.add(value, refs[0])
        elif isinstance(value, tuple):
            ordered = sorted(refs, key=lambda r: int(r.name.rsplit(".", 1)[1]))
            for item, ref in zip(value, ordered, strict=True):
                self.add(item, ref)


@dataclasses.dataclass
class Call:
    """One step call, bound and keyed."""

    step: Step
    invocation: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    parts: KeyParts
    key: str
    inputs: tuple[ArtifactRef, ...]
    outputs: tuple[ArtifactRef, ...] = ()  # set once served or run


def bind(
    values: Values,
    step: Step,
    invocation: str,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    hashed: dict[int, tuple[str, str]] | None = None,
) -> Call:
    """Bind a step call's arguments and make its cache key: values an earlier step of this run
    returned are inputs (their stored digest), others parameters (hashed by value).

    ``hashed`` (a map's, shared by its items) keeps each parameter's digest and materializer by
    object id while the map binds, so a value every item shares (``step.map(rows, model=m)``)
    is hashed once, not once per item; the caller holds the values, so their ids stay theirs.
    """
    try:
        bound = inspect.signature(step.fn).bind(*args, **kwargs)
    except TypeError as exc:
        raise StepFailed(f"step {invocation}: bad arguments: {exc}") from exc
    bound.apply_defaults()
    params: dict[str, str] = {}
    shown: dict[str, str] = {}
    inputs: dict[str, str] = {}
    refs: list[ArtifactRef] = []
    for name, value in _arguments(bound):
        ref = values.ref_of(value)
        if ref is not None:
            inputs[name] = ref.digest
            refs.append(dataclasses.replace(ref, name=name))
            continue
        items = _refs_of_items(values, value)
        if items is not None:
            inputs[name] = blake3("\n".join(r.digest for r in items).encode()).hexdigest()
            refs.extend(dataclasses.replace(r, name=f"{name}[{i}]") for i, r in enumerate(items))
            continue
        known = None if hashed is None or _is_scalar(value) else hashed.get(id(value))
        if known is not None:
            params[name], kind = known
        else:
            try:
                params[name] = materializers.digest(value, allow_pickle=step.pickle)
                kind = materializers.materializer_for(value, allow_pickle=step.pickle)
            except Exception as exc:
                raise StepFailed(
                    f"step {invocation}: parameter {name!r} cannot be hashed for the cache key: "
                    f"{exc}"
                ) from exc
            if hashed is not None and not _is_scalar(value):
                hashed[id(value)] = (params[name], kind)
        text = short_value(value)
        if text is not None:
            shown[name] = text
        refs.append(
            ArtifactRef(
                name=name,
                digest=params[name],
                materializer=kind,
                type_name=type(value).__name__,
            )
        )
    _, code = fingerprint.code_fingerprint(step.fn)
    parts: KeyParts = {"code": code, "params": params, "inputs": inputs, "values": shown}
    return Call(step, invocation, args, kwargs, parts, cache_key(parts), tuple(refs))


def _refs_of_items(values: Values, value: object) -> list[ArtifactRef] | None:
    """Refs of a map's result list, or of a list/tuple whose items all came from steps."""
    listed = values.refs_of_list(value)
    if listed is not None:
        return listed
    if not isinstance(value, list | tuple) or not value:
        return None
    refs = [values.ref_of(item) for item in value]
    return None if any(r is None for r in refs) else [r for r in refs if r is not None]


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, bool | int | float | complex | str | bytes)


def _arguments(bound: inspect.BoundArguments) -> Iterator[tuple[str, Any]]:
    """Each argument by name; ``*args`` items as ``name[i]``, ``**kwargs`` items by key."""
    parameters = bound.signature.parameters
    for name, value in bound.arguments.items():
        kind = parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            yield from ((f"{name}[{i}]", item) for i, item in enumerate(value))
        elif kind is inspect.Parameter.VAR_KEYWORD:
            yield from value.items()
        else:
            yield name, value
