"""Jinja2 prompt templates render within bounds of time and size, or say which bound."""

from __future__ import annotations

import re
import time
import types

import pytest

from loopwright.errors import InvalidInput
from loopwright.prompts import _sandbox
from loopwright.prompts._sandbox import render_bounded
from loopwright.prompts._template import check_template


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        ("{% for i in range(3) %}{{ i }}{% endfor %}", {}, "012"),
        ("{{ name ~ '!' }}{% if n %}{{ n * 2 }}{% endif %}", {"name": "Ada", "n": 21}, "Ada!42"),
        ("{{ items|join(', ') }}", {"items": ["a", "b"]}, "a, b"),
        ("{{ '%s-%5d'|format('a', 3) }} {{ '{} {:>3}'.format('b', 4) }}", {}, "a-    3 b   4"),
        ("{{ '-' * 3 }}{{ 'ab'|replace('a', 'x') }}{{ 2 ** 10 }}", {}, "---xb1024"),
        ("{{ '%d'|format(123456789) }}", {}, "123456789"),
    ],
)
def test_ordinary_templates_render(template: str, values: dict[str, object], expected: str) -> None:
    assert render_bounded(template, values) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ 'x' * 100000000 }}", "product would be over"),
        ("{{ 10 ** 100000000 }}", "power would be over"),
        (
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
            "loops more than",
        ),
        ("{% for a in name %}{% for b in name %}{% endfor %}{% endfor %}", "loops more than"),
        ("{{ range(100000) }}", "the cap is 10000"),
        ("{{ 'x'|center(100000000) }}", "center(100000000) would be over"),
        ("{{ 'x'.ljust(100000000) }}", "ljust(100000000) would be over"),
        ("{{ 'x'|indent(100000000, true) }}", "indent(100000000) would be over"),
        ("{{ '%0100000000d' % 1 }}", "format width"),
        ("{{ '{:100000000}'.format(1) }}", "format width"),
        ("{{ '%*d'|format(100000000, 1) }}", "format width"),
        ("{{ range(10000)|join('x' * 1000000) }}", "join would be over"),
        ("{{ ','.join(['x' * 1000000] * 3) }}", "join would be over"),
        ("{{ ('a' * 1000)|replace('a', 'b' * 10000) }}", "replace would be over"),
        ("{{ ('a' * 1500000) + ('b' * 1500000) }}", "sum would be over"),
        (
            "{% set ns = namespace(s=name) %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
            "{% endfor %}",
            "concatenation would be over",
        ),
        ("{% for i in range(9000) %}{{ name }}{% endfor %}", "output would be over"),
    ],
)
def test_hostile_templates_are_refused_quickly(template: str, message: str) -> None:
    started = time.perf_counter()
    with pytest.raises(InvalidInput, match=re.escape(message)):
        render_bounded(template, {"name": "y" * 1000})
    assert time.perf_counter() - started < 2 * _sandbox.MAX_SECONDS


def test_the_time_budget_stops_a_slow_render(monkeypatch: pytest.MonkeyPatch) -> None:
    """The render's clock moves 10 ms a reading (a fast machine renders 10,000 steps in under
    the budget: the test must not depend on it)."""
    now = [0.0]

    def monotonic() -> float:
        now[0] += 0.01
        return now[0]

    monkeypatch.setattr(_sandbox, "MAX_SECONDS", 0.05)
    monkeypatch.setattr(_sandbox, "time", types.SimpleNamespace(monotonic=monotonic))
    slow = "{% for i in range(10000) %}{{ name|upper|lower|upper|lower }}{% endfor %}"
    with pytest.raises(InvalidInput, match=r"took over 0\.05 s"):
        render_bounded(slow, {"name": "q" * 150})


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{% for i in range(20000) %}{{ i }}{% endfor %}", "the cap is 10000"),
        ("{% if 1 %}{{ 'x' * 100000000 }}{% endif %}", "product would be over"),
        ("{% if 1 %}{{ 9 ** 99999999 }}{% endif %}", "power would be over"),
        ("{% for x in %}", "does not parse"),
    ],
)
def test_register_refuses_what_is_out_of_bounds_on_its_face(template: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_template(template)
    with pytest.raises(InvalidInput, match=message):
        check_template([{"role": "user", "content": template}])
