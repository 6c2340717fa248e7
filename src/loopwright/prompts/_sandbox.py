"""A bounded Jinja2 sandbox: prompt templates render in bounded time and size.

Jinja2's :class:`~jinja2.sandbox.SandboxedEnvironment` keeps a template from reaching Python's
internals but not from working forever or filling memory: ``{{ "x" * 10**9 }}`` or two nested
``range(10000)`` loops are legal. :class:`BoundedEnvironment` adds, per render:

- ``*`` and ``**`` refused when the result would pass ``MAX_OUTPUT`` characters (or digits);
- ``range`` capped at ``MAX_RANGE`` items;
- every ``{% for %}`` counted against ``MAX_STEPS`` iterations in all, and the render against
  ``MAX_SECONDS``;
- ``+``, ``~``, ``join`` and ``replace`` refused when the result would pass ``MAX_OUTPUT``;
- widening calls and filters refused when given a number over ``MAX_OUTPUT``
  (``"x".ljust(10**9)``, ``center(10**9)``), formats refused a width of a million or more;
- the output refused past ``MAX_OUTPUT`` characters.

:func:`check_bounds` refuses, when a version is registered, what is out of bounds on its face
(a constant ``range`` or product over the caps).

Example:
    >>> render_bounded("{% for i in range(3) %}{{ i }}{% endfor %}", {})
    '012'
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from jinja2 import Environment, nodes
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from ..errors import InvalidInput

__all__ = ["MAX_OUTPUT", "MAX_RANGE", "MAX_SECONDS", "MAX_STEPS", "check_bounds", "render_bounded"]

MAX_OUTPUT = 2_000_000  # characters of a rendered text, or of one value made by * or **
MAX_RANGE = 10_000
MAX_STEPS = 200_000  # loop iterations of one render, all loops together
MAX_SECONDS = 2.0
_BUDGET_FILTER = "loopwright_budget"
_CONCAT_FILTER = "loopwright_concat"


class _Budget:
    def __init__(self) -> None:
        self.steps = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise InvalidInput(
                f"the prompt template loops more than {MAX_STEPS} times in one render; "
                "loop over fewer items"
            )
        if not self.steps % 1024:
            self.clock()

    def clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise InvalidInput(
                f"the prompt template took over {MAX_SECONDS} s to render; simplify it"
            )


def _too_big(what: str) -> InvalidInput:
    return InvalidInput(
        f"the prompt template's {what} would be over {MAX_OUTPUT} characters; "
        "keep repeats, widths and joins small"
    )


# Filters and str methods whose result grows with a number argument (a width, a count).
_WIDENING = frozenset({"center", "indent", "wordwrap", "slice", "batch", "ljust", "rjust",
                       "zfill", "expandtabs"})  # fmt: skip
_PERCENT_WIDTH = re.compile(r"%[-+ #0]*\*|%[-+ #0]*\d{7,}|%[-+ #0]*\d*\.\d{7,}")
_BRACE_WIDTH = re.compile(r"\{[^{}]*:[^{}]*(?:\d{7,}|\{)[^{}]*\}")


def _check_widening(name: str, args: Iterable[Any]) -> None:
    if name in _WIDENING:
        for arg in args:
            if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_OUTPUT:
                raise _too_big(f"{name}({arg})")


def _check_format(name: str, template: Any) -> None:
    if not isinstance(template, str):
        return
    percent = name == "%" or (name == "format" and "%" in template)
    if percent and _PERCENT_WIDTH.search(template):
        raise _too_big("format width")
    if name in ("format", "format_map") and _BRACE_WIDTH.search(template):
        raise _too_big("format width")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0


def _check_grow(name: str, args: list[Any]) -> None:
    """Refuse a ``replace`` or ``join`` whose result would pass the cap, before making it."""
    if name == "replace" and len(args) >= 3 and all(isinstance(a, str) for a in args[:3]):
        text, old, new = args[:3]
        grows = max(len(new) - len(old), 0) * (text.count(old) if old else len(text) + 1)
        if len(text) + grows > MAX_OUTPUT:
            raise _too_big("replace")
    elif name == "join" and len(args) >= 2:
        items, separator = args[0], args[1]
        if isinstance(items, str) and isinstance(separator, str | list | tuple):
            items, separator = separator, items  # str.join(separator, items)
        if isinstance(separator, str) and isinstance(items, list | tuple | range | str):
            parts = sum(map(_size, items)) if isinstance(items, list | tuple) else 0
            if len(separator) * len(items) + parts > MAX_OUTPUT:
                raise _too_big("join")


class BoundedEnvironment(SandboxedEnvironment):
    """A sandbox whose renders stay within the caps above (one budget per environment)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self) -> None:
        super().__init__()
        self.budget = _Budget()
        self.globals["range"] = self._range
        self.filters = {name: self._bounded(name, f) for name, f in self.filters.items()}
        self.filters[_BUDGET_FILTER] = self._counted
        self.filters[_CONCAT_FILTER] = self._concat

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _BUDGET_FILTER, [], [], None, None)
        for parent in list(tree.find_all(nodes.Node)):
            for field in parent.fields:
                child = getattr(parent, field, None)
                if isinstance(child, nodes.Concat):
                    setattr(parent, field, _concat_node(child))
                elif isinstance(child, list):
                    setattr(parent, field, [_concat_node(c) if isinstance(c, nodes.Concat)
                                            else c for c in child])  # fmt: skip
        return tree

    def _counted(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.budget.step()
            yield item

    def _concat(self, parts: list[Any]) -> str:
        self.budget.clock()
        texts = [str(p) for p in parts]
        if sum(map(len, texts)) > MAX_OUTPUT:
            raise _too_big("concatenation")
        return "".join(texts)

    def _range(self, *args: int) -> range:
        numbers = range(*args)
        if len(numbers) > MAX_RANGE:
            raise InvalidInput(
                f"range{args} in the prompt template has {len(numbers)} items; "
                f"the cap is {MAX_RANGE}"
            )
        return numbers

    def _bounded(self, name: str, function: Any) -> Any:
        @functools.wraps(function)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            # The context or environment comes first for some filters: skip what is neither.
            plain = [a for a in args if not isinstance(a, Context | EvalContext | Environment)]
            _check_widening(name, [*plain[1:], *kwargs.values()])
            _check_grow(name, [*plain, *kwargs.values()])
            if plain:
                _check_format(name, plain[0])
            self.budget.clock()
            return function(*args, **kwargs)

        return bounded

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self.budget.clock()
        if operator == "*":
            _check_product(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%":
            _check_format("%", left)
        elif operator == "+" and _size(left) + _size(right) > MAX_OUTPUT:
            raise _too_big("sum")
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Any:
        # Checked at access, as the sandbox wraps str.format at access (not in call).
        if getattr(value, "__name__", "") in ("format", "format_map"):
            _check_format("format", getattr(value, "__self__", None))
        return super().wrap_str_format(value)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        __self.budget.clock()
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str | list | tuple):
            _check_widening(name, [*args, *kwargs.values()])
            _check_grow(name, [owner, *args])
            _check_format(name, owner)
        return super().call(__context, __obj, *args, **kwargs)


def _concat_node(node: nodes.Concat) -> nodes.Filter:
    return nodes.Filter(nodes.List(node.nodes), _CONCAT_FILTER, [], [], None, None)


def _check_product(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        sized = isinstance(times, int) and isinstance(seq, str | list | tuple)
        if sized and len(seq) * times > MAX_OUTPUT:
            raise _too_big("product")


def _check_power(base: Any, exponent: Any) -> None:
    whole = isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1
    if whole and exponent > 0 and exponent * math.log10(abs(base)) > MAX_OUTPUT:
        raise _too_big("power")


def render_bounded(text: str, values: Mapping[str, Any]) -> str:
    """``text`` rendered with ``values`` within the caps, or InvalidInput naming the cap."""
    environment = BoundedEnvironment()
    parts: list[str] = []
    size = 0
    for part in environment.from_string(text).generate(**values):
        size += len(part)
        if size > MAX_OUTPUT:
            raise _too_big("output")
        environment.budget.clock()
        parts.append(part)
    return "".join(parts)


def check_bounds(tree: nodes.Template) -> None:
    """Refuse what a parsed template would refuse at every render: a constant ``range`` over
    the cap, a constant product or power over the output cap."""
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == "range":
            args = [a.value for a in call.args if isinstance(a, nodes.Const)]
            if len(args) == len(call.args) and all(isinstance(a, int) for a in args):
                BoundedEnvironment()._range(*args)
    for node in tree.find_all((nodes.Mul, nodes.Pow)):
        if isinstance(node.left, nodes.Const) and isinstance(node.right, nodes.Const):
            left, right = node.left.value, node.right.value
            (_check_product if isinstance(node, nodes.Mul) else _check_power)(left, right)
