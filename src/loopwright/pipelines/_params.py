"""A pipeline's parameters: bound to its signature, strings converted by its annotations.

``loopwright pipelines run mod:fn --param n=200`` gives strings; the annotation says what they
become: ``int``, ``float``, ``bool`` (true/false, yes/no, on/off, 1/0), ``str``, ``list[...]`` and
``dict[...]`` (JSON), ``X | None`` (``null`` or ``none`` for None). Values given from Python keep
their type. Defaults are applied, so the record holds every parameter the run used; all must be
JSON values, since they are logged as the run's parameters and given again on resume.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InvalidInput

__all__ = ["bind_params"]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def bind_params(fn: Callable[..., Any], given: Mapping[str, Any], *, ref: str) -> dict[str, Any]:
    """Every parameter of ``fn`` (defaults included), with strings converted; InvalidInput
    naming the parameter and the expected form otherwise."""
    signature = inspect.signature(fn)
    parameters = signature.parameters
    unknown = sorted(set(given) - set(parameters))
    if unknown:
        raise InvalidInput(
            f"pipeline {ref} has no parameter {', '.join(map(repr, unknown))}; its parameters: "
            f"{', '.join(parameters) or '(none)'}"
        )
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an annotation that does not resolve: keep the strings as given
        hints = {}
    params: dict[str, Any] = {}
    for name, parameter in parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise InvalidInput(
                f"pipeline {ref}: *{name} parameters are not supported; name each parameter"
            )
        if name in given:
            value = given[name]
            if isinstance(value, str) and name in hints:
                value = _convert(value, hints[name], name=name, ref=ref)
        elif parameter.default is not parameter.empty:
            value = parameter.default
        else:
            raise InvalidInput(
                f"pipeline {ref} needs parameter {name!r}: pass it (--param {name}=...)"
            )
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"pipeline {ref}: parameter {name!r} is a {type(value).__name__}, not a JSON "
                "value (str, number, bool, None, list, dict); pass data as a dataset name or "
                "path and load it in a step"
            ) from exc
        params[name] = value
    return params


def _convert(text: str, hint: Any, *, name: str, ref: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) < len(typing.get_args(hint)) and text.strip().lower() in ("null", "none"):
            return None
        if len(options) == 1:
            return _convert(text, options[0], name=name, ref=ref)
        return text
    target = origin or hint
    try:
        if target is str or hint is Any:
            return text
        if target is bool:
            lowered = text.strip().lower()
            if lowered in _TRUE | _FALSE:
                return lowered in _TRUE
            raise ValueError("not a boolean")
        if target is int:
            return int(text)
        if target is float:
            return float(text)
        if target in (list, tuple, dict):
            value = json.loads(text)
            expected = dict if target is dict else list
            if not isinstance(value, expected):
                raise ValueError(f"not a JSON {expected.__name__}")
            return value
    except ValueError as exc:
        example = {bool: "true", int: "3", float: "0.5", dict: '{"a": 1}'}.get(target, "[1, 2]")
        raise InvalidInput(
            f"pipeline {ref}: parameter {name!r} expects {_hint_name(hint)}, got {text!r} "
            f"({exc}); e.g. --param {name}={example}"
        ) from exc
    return text


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)
