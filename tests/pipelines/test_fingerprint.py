"""Code fingerprints: a step's digest follows the project code it calls (helpers, classes,
constants, closures), not unrelated functions, library code, comments or decorators."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

from _pipeline_project import Project

from loopwright.pipelines.fingerprint import code_fingerprint, is_project_file, project_paths

HELPERS = """
LIMIT = 3


def clean(rows):
    return [r.strip() for r in rows][:LIMIT]


def unrelated():
    return "never called by the step"


class Scaler:
    def __init__(self, factor):
        self.factor = factor

    def apply(self, x):
        return x * self.factor
"""

STEPS = """
import json

import numpy as np

import helpers
from helpers import Scaler


def prepare(rows):
    return helpers.clean(rows) + [json.dumps(list(np.arange(2)))]


def scale(x):
    return Scaler(2).apply(x)
"""


def _fingerprints(project: Project, helpers: str, steps: str = STEPS) -> dict[str, Any]:
    """Both modules written and imported afresh, as a new process would see them."""
    project.write("helpers", helpers)
    module = project.write("steps", steps)
    return {name: code_fingerprint(getattr(module, name)) for name in ("prepare", "scale")}


def _changed(before: tuple[str, dict[str, str]], after: tuple[str, dict[str, str]]) -> list[str]:
    return sorted(
        k for k in before[1].keys() | after[1].keys() if before[1].get(k) != after[1].get(k)
    )


def test_parts_name_the_step_and_the_project_code_it_reaches(project: Project) -> None:
    found = _fingerprints(project, HELPERS)
    digest, parts = found["prepare"]
    assert len(digest) == 64
    assert sorted(parts) == ["clean (helpers.py)", "helpers.LIMIT", "prepare (steps.py)"]
    assert sorted(found["scale"][1]) == ["Scaler (helpers.py)", "scale (steps.py)"]
    assert code_fingerprint(project.write("steps", STEPS).prepare)[0] == digest  # stable


def test_a_changed_helper_changes_the_digest_and_is_named(project: Project) -> None:
    before = _fingerprints(project, HELPERS)
    after = _fingerprints(project, HELPERS.replace("r.strip()", "r.strip().lower()"))
    assert _changed(before["prepare"], after["prepare"]) == ["clean (helpers.py)"]
    assert after["scale"] == before["scale"]


def test_a_changed_constant_changes_the_digest(project: Project) -> None:
    before = _fingerprints(project, HELPERS)
    after = _fingerprints(project, HELPERS.replace("LIMIT = 3", "LIMIT = 4"))
    assert _changed(before["prepare"], after["prepare"]) == ["helpers.LIMIT"]


def test_a_changed_method_of_a_class_the_step_uses_changes_the_digest(project: Project) -> None:
    before = _fingerprints(project, HELPERS)
    after = _fingerprints(project, HELPERS.replace("x * self.factor", "x * self.factor + 1"))
    assert _changed(before["scale"], after["scale"]) == ["Scaler (helpers.py)"]
    assert after["prepare"] == before["prepare"]


def test_unrelated_functions_comments_and_formatting_do_not_count(project: Project) -> None:
    before = _fingerprints(project, HELPERS)
    edited = HELPERS.replace('"never called by the step"', '"changed"').replace(
        "def clean(rows):\n", "def clean(rows):  # a comment\n\n    # another\n"
    )
    after = _fingerprints(project, edited + "\n\ndef added():\n    return 1\n")
    assert after == before


def test_a_changed_default_value_changes_the_digest(project: Project) -> None:
    # Equal code objects: the default lives in the function, not in its code.
    first = code_fingerprint(project.write("defaults", "def f(x, k=3):\n    return x * k\n").f)
    second = code_fingerprint(project.write("defaults", "def f(x, k=4):\n    return x * k\n").f)
    assert first[0] != second[0]
    make = eval("lambda k: lambda x, k=k: x * k")  # no source: bytecode plus defaults
    assert code_fingerprint(make(3))[0] != code_fingerprint(make(4))[0]
    assert code_fingerprint(make(3)) == code_fingerprint(make(3))


def test_the_steps_own_decorators_do_not_count(project: Project) -> None:
    project.write("deco", "def retry(**options):\n    return lambda fn: fn\n")
    source = "from deco import retry\n\n@retry(times={n})\ndef step(x):\n    return x + 1\n"
    first = code_fingerprint(project.write("decorated", source.format(n=1)).step)
    second = code_fingerprint(project.write("decorated", source.format(n=5)).step)
    assert first == second
    third = code_fingerprint(
        project.write("decorated", source.format(n=5).replace("+ 1", "+ 2")).step
    )
    assert third[0] != first[0]


def test_library_code_is_left_out() -> None:
    import json

    import numpy as np

    def uses_libraries(x: Any) -> Any:
        return np.mean(json.loads(x))

    parts = code_fingerprint(uses_libraries)[1]
    assert list(parts) == [
        "test_library_code_is_left_out.<locals>.uses_libraries (test_fingerprint.py)"
    ]
    assert not is_project_file(np.__file__) and not is_project_file(json.__file__)
    assert not is_project_file(sys.modules["loopwright"].__file__)
    assert is_project_file(__file__)
    assert not is_project_file("<stdin>") and not is_project_file(None)


def test_closures_and_wrappers_are_followed(project: Project) -> None:
    module = project.write(
        "closures",
        """
        import functools

        def helper(x):
            return x + 1

        def make():
            h = helper
            def step(x):
                return h(x)
            return step

        def traced(fn):
            @functools.wraps(fn)
            def wrapper(*args):
                return fn(*args)
            return wrapper

        @traced
        def wrapped(x):
            return helper(x)
        """,
    )
    assert sorted(code_fingerprint(module.make())[1]) == [
        "helper (closures.py)",
        "make.<locals>.step (closures.py)",
    ]
    assert sorted(code_fingerprint(module.wrapped)[1]) == [
        "helper (closures.py)",
        "wrapped (closures.py)",
    ]
    partial = functools.partial(module.helper, 1)
    assert code_fingerprint(partial) == code_fingerprint(module.helper)


class _StepLike:
    """What ``@step`` makes: an object whose ``__wrapped__`` is the function."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any) -> Any:
        return self.__wrapped__(*args)  # type: ignore[attr-defined]


def test_a_step_object_fingerprints_as_its_function(project: Project) -> None:
    module = project.write("plain", "def f(x):\n    return x * 3\n")
    assert code_fingerprint(_StepLike(module.f)) == code_fingerprint(module.f)


def test_functions_without_source_use_their_bytecode() -> None:
    add_one = eval("lambda x: x + 1")  # no file to read: as typed into a REPL
    add_two = eval("lambda x: x + 2")
    assert code_fingerprint(add_one) == code_fingerprint(eval("lambda x: x + 1"))
    assert code_fingerprint(add_one)[0] != code_fingerprint(add_two)[0]
    assert list(code_fingerprint(add_one)[1]) == ["<lambda> (<string>)"]


def test_recursion_terminates(project: Project) -> None:
    module = project.write(
        "recursive",
        """
        def even(n):
            return n == 0 or odd(n - 1)

        def odd(n):
            return n != 0 and even(n - 1)
        """,
    )
    assert sorted(code_fingerprint(module.even)[1]) == ["even (recursive.py)", "odd (recursive.py)"]


def test_project_paths_hold_the_project_not_the_libraries(project: Project) -> None:
    paths = project_paths()
    assert os.path.realpath(project.folder) in paths
    assert not any(p.startswith(os.path.realpath(sys.prefix) + os.sep) for p in paths)


def test_list_and_dict_constants_count(project: Project) -> None:
    source = (
        "COLUMNS = {columns}\nPARAMS = {{'depth': 3}}\n\n"
        "def f(df):\n    return df[COLUMNS], PARAMS\n"
    )
    first = code_fingerprint(project.write("config_use", source.format(columns=["a", "b"])).f)
    assert sorted(first[1]) == ["config_use.COLUMNS", "config_use.PARAMS", "f (config_use.py)"]
    second = code_fingerprint(project.write("config_use", source.format(columns=["a", "c"])).f)
    assert _changed(first, second) == ["config_use.COLUMNS"]


def test_set_constants_give_the_same_digest_in_every_process(project: Project) -> None:
    import subprocess

    project.write(
        "sets",
        "NAMES = frozenset({'age', 'income', 'zip', 'x', 'y'})\n\n"
        "def f(n):\n    return n in NAMES\n",
    )
    script = (
        f"import sys; sys.path.insert(0, {str(project.folder)!r}); import sets; "
        "from loopwright.pipelines.fingerprint import code_fingerprint; "
        "print(code_fingerprint(sets.f)[0])"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert len(digests) == 1


def test_a_project_base_class_counts(project: Project) -> None:
    base = "class Base:\n    def score(self, x):\n        return x * {k}\n"
    child = (
        "from base_mod import Base\n\nclass Child(Base):\n    pass\n\n"
        "def f(x):\n    return Child().score(x)\n"
    )
    project.write("base_mod", base.format(k=2))
    first = code_fingerprint(project.write("child_mod", child).f)
    assert sorted(first[1]) == ["Base (base_mod.py)", "Child (child_mod.py)", "f (child_mod.py)"]
    project.write("base_mod", base.format(k=3))
    second = code_fingerprint(project.write("child_mod", child).f)
    assert _changed(first, second) == ["Base (base_mod.py)"]
