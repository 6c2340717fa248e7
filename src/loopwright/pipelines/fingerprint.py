"""Code fingerprints: a digest of a function and of the project code it calls.

A step's cache key includes its code, and "its code" is more than its own body: a helper it
calls, a class it builds or a constant it reads can change what it returns. This module follows
the names a function's code loads (globals, attributes of modules it imported, closure cells)
to the functions, classes and constants they resolve to, and hashes those that live in
*project code*: files outside the interpreter's prefix, the standard library, site-packages
and Loopwright itself. Library code is left out (its version is the environment's business),
so upgrading pandas does not invalidate every cache; changing ``features.clean`` does.

Source is hashed through its syntax tree (``ast.dump``), so comments and formatting do not
count; code without source (a lambda typed into a REPL) is hashed from its bytecode and
constants. Per-object digests are cached by code object, and the names a code object loads
are read once, so fingerprinting the same function again is a few dictionary lookups; a
module reloaded with new code gives new code objects, and a new fingerprint.

Example:
    >>> def step(x):
    ...     return x * 2
    >>> digest, parts = code_fingerprint(step)
    >>> len(digest), list(parts)  # helpers typed at a prompt are no project file: left out
    (64, ['step (<doctest loopwright.pipelines.fingerprint[0]>)'])
    >>> code_fingerprint(step)[0] == digest
    True
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import os
import site
import sys
import sysconfig
import textwrap
import threading
import types
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from blake3 import blake3

__all__ = ["code_fingerprint", "is_project_file", "project_paths"]

_CONSTANT_TYPES = (int, float, str, bytes, bool, type(None))
_MAX_CONSTANT_ITEMS = 256
_lock = threading.Lock()
# By object, not by equality: equal code objects may come with different default values.
_function_digests: weakref.WeakKeyDictionary[types.FunctionType, str] = weakref.WeakKeyDictionary()
_class_digests: weakref.WeakKeyDictionary[type, str] = weakref.WeakKeyDictionary()
_loaded_names: dict[types.CodeType, tuple[str, ...]] = {}
_project_files: dict[str, bool] = {}


def code_fingerprint(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The digest of ``fn`` and the project code it reaches, and the parts it was made of.

    Returns:
        ``(digest, parts)``: ``parts`` maps ``"qualname (file name)"`` of each function and
        class, and ``"module.NAME"`` of each constant, to its own digest, so that a changed
        digest can be explained by the parts that differ; ``digest`` is BLAKE3 over the
        sorted parts.
    """
    parts: dict[str, str] = {}
    _visit(_unwrap(fn), parts, set())
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return blake3(canonical).hexdigest(), parts


def is_project_file(filename: str | None) -> bool:
    """Whether ``filename`` is project code: a real file outside the interpreter's prefixes,
    the standard library, site-packages and the Loopwright package."""
    if not filename or filename.startswith("<"):
        return False
    with _lock:
        known = _project_files.get(filename)
    if known is None:
        resolved = os.path.realpath(filename)
        known = os.path.isfile(resolved) and not any(
            resolved == root or resolved.startswith(root + os.sep) for root in _library_roots()
        )
        with _lock:
            _project_files[filename] = known
    return known


def project_paths() -> list[str]:
    """The folders on ``sys.path`` that hold project code (``""`` as the current folder), in
    order: what a worker process needs on its path to import the project's modules."""
    found = []
    for entry in sys.path:
        folder = os.path.realpath(entry or os.getcwd())
        if not os.path.isdir(folder) or folder in found:
            continue
        if not any(folder == root or folder.startswith(root + os.sep) for root in _library_roots()):
            found.append(folder)
    return found


@functools.lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        *(paths.get(key, "") for key in ("stdlib", "platstdlib", "purelib", "platlib")),
        *site.getsitepackages(),
        site.getusersitepackages(),
        str(Path(__file__).resolve().parents[1]),  # loopwright itself
    }
    return tuple(sorted({os.path.realpath(root) for root in roots if root}))


def _unwrap(obj: Any) -> Any:
    # A @step or functools.wraps wrapper points at the function it wraps.
    for _ in range(10):
        if isinstance(obj, (types.MethodType, classmethod, staticmethod)):
            obj = obj.__func__
        elif isinstance(obj, functools.partial):
            obj = obj.func
        elif not isinstance(obj, type) and hasattr(obj, "__wrapped__"):
            obj = obj.__wrapped__
        else:
            break
    return obj


def _visit(obj: Any, parts: dict[str, str], seen: set[int]) -> None:
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, types.FunctionType):
        _visit_function(obj, parts, seen)
    elif isinstance(obj, type):
        _visit_class(obj, parts, seen)


def _visit_function(fn: types.FunctionType, parts: dict[str, str], seen: set[int]) -> None:
    code = fn.__code__
    _add(parts, _label(fn.__qualname__, code.co_filename), _code_digest(fn))
    module = getattr(fn, "__module__", None) or "?"
    namespace = fn.__globals__
    for name in _names(code):
        if name in namespace:
            _reference(namespace[name], f"{module}.{name}", code.co_names, parts, seen)
    for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell: the variable is not bound yet
            continue
        _reference(value, f"{fn.__qualname__}.{name}", code.co_names, parts, seen)


def _visit_class(cls: type, parts: dict[str, str], seen: set[int]) -> None:
    if not _in_project(cls):
        return
    _add(parts, _label(cls.__qualname__, _file_of(cls)), _class_digest(cls))
    for base in cls.__bases__:  # a project base class's methods run too
        _visit(base, parts, seen)
    for member in list(vars(cls).values()):
        member = _unwrap(member) if not isinstance(member, property) else member.fget
        if isinstance(member, types.FunctionType):
            # The class's source already covers its methods; follow what they call.
            seen.add(id(member))
            module = getattr(member, "__module__", None) or "?"
            for name in _names(member.__code__):
                if name in member.__globals__:
                    value = member.__globals__[name]
                    _reference(value, f"{module}.{name}", member.__code__.co_names, parts, seen)


def _reference(
    value: Any, label: str, attributes: tuple[str, ...], parts: dict[str, str], seen: set[int]
) -> None:
    constant = _constant_text(value)
    if constant is not None:
        # A constant the code reads (a threshold, a list of columns) is part of it. Only names
        # whose code is project code get here, so library constants never count.
        _add(parts, label, blake3(constant.encode()).hexdigest())
        return
    if isinstance(value, types.ModuleType):
        if not is_project_file(getattr(value, "__file__", None)):
            return
        # ``helpers.clean(x)``: follow the attributes the code names on the module.
        for attribute in attributes:
            if attribute in vars(value):
                member = vars(value)[attribute]
                _reference(member, f"{value.__name__}.{attribute}", (), parts, seen)
        return
    target = _unwrap(value)
    if isinstance(target, types.FunctionType):
        if is_project_file(target.__code__.co_filename):
            _visit(target, parts, seen)
    elif isinstance(target, type):
        _visit(target, parts, seen)


def _constant_text(value: Any, depth: int = 0) -> str | None:
    """A text for a small constant made of plain values, the same in every process (sets are
    sorted: their order follows string hashing, which changes per process), else None."""
    if isinstance(value, _CONSTANT_TYPES):
        return repr(value)
    if depth >= 4 or not isinstance(value, (tuple, list, set, frozenset, dict)):
        return None
    if len(value) > _MAX_CONSTANT_ITEMS:
        return None
    elements = [*value.keys(), *value.values()] if isinstance(value, dict) else list(value)
    texts = [_constant_text(element, depth + 1) for element in elements]
    if any(text is None for text in texts):
        return None
    if isinstance(value, dict):
        half = len(value)
        texts = [f"{key}: {item}" for key, item in zip(texts[:half], texts[half:], strict=True)]
    if isinstance(value, (set, frozenset)):
        texts.sort()
    return f"{type(value).__name__}({', '.join(map(str, texts))})"


def _names(code: types.CodeType) -> tuple[str, ...]:
    """The names ``code`` and the code nested in it (lambdas, comprehensions) load."""
    with _lock:
        found = _loaded_names.get(code)
    if found is None:
        found = tuple(dict.fromkeys(_walk_names(code)))
        with _lock:
            _loaded_names[code] = found
    return found


def _walk_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _walk_names(const)


def _code_digest(fn: types.FunctionType) -> str:
    with _lock:
        found = _function_digests.get(fn)
    if found is None:
        try:
            source = textwrap.dedent(inspect.getsource(fn))
            found = _source_digest(source, undecorated=True)
        except (OSError, TypeError):
            defaults = repr((fn.__defaults__, fn.__kwdefaults__)).encode()
            found = blake3(_bytecode(fn.__code__) + b"\0" + defaults).hexdigest()
        with _lock:
            _function_digests[fn] = found
    return found


def _class_digest(cls: type) -> str:
    with _lock:
        found = _class_digests.get(cls)
    if found is None:
        try:
            found = _source_digest(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError):
            methods = [m for m in vars(cls).values() if isinstance(m, types.FunctionType)]
            found = blake3(b"".join(_bytecode(m.__code__) for m in methods)).hexdigest()
        with _lock:
            _class_digests[cls] = found
    return found


def _source_digest(source: str, *, undecorated: bool = False) -> str:
    try:
        module = ast.parse(source)
    except SyntaxError:  # a lambda's source line may not parse on its own
        return blake3(source.encode()).hexdigest()
    if undecorated:
        # A function's decorators (``@step(retries=3)``) say how it runs, not what it returns.
        for node in module.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                node.decorator_list = []
    return blake3(ast.dump(module, include_attributes=False).encode()).hexdigest()


def _bytecode(code: types.CodeType) -> bytes:
    consts = [
        _bytecode(c) if isinstance(c, types.CodeType) else repr(c).encode() for c in code.co_consts
    ]
    return b"\0".join([code.co_code, *consts, repr(code.co_names).encode()])


def _in_project(cls: type) -> bool:
    return is_project_file(_file_of(cls))


def _file_of(cls: type) -> str | None:
    module = sys.modules.get(cls.__module__)
    return getattr(module, "__file__", None)


def _add(parts: dict[str, str], label: str, digest: str) -> None:
    # Two objects under one label (a name imported before its module was reloaded): keep both.
    while parts.get(label, digest) != digest:
        label += "'"
    parts[label] = digest


def _label(qualname: str, filename: str | None) -> str:
    return f"{qualname} ({Path(filename).name if filename else '?'})"
