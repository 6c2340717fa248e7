r"""One filter language, one meaning: quoting and LIKE escapes (``\_``, ``\%``, ``\\``) give the
same answers through the SQL back-end on SQLite and PostgreSQL (run search, registry search), the
in-memory back-end, and an independent reference written here."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput
from loopwright.registry import RegistryService
from loopwright.registry.entities import ApprovalPolicy
from loopwright.store import schema as t
from loopwright.store.filters import (
    MAX_COMPARISONS,
    Comparison,
    Entity,
    Filter,
    Schema,
    parse,
)
from loopwright.store.filters.memory import predicate
from loopwright.store.filters.sql import where
from loopwright.store.home import Store, open_store
from loopwright.tracking import TrackingService
from loopwright.tracking._filter import RUN_SCHEMA
from loopwright.tracking.entities import Run
from loopwright.tracking.search import run_columns, search_run_ids

# Characters that quoting and LIKE treat specially, and letters to tell case apart.
_SPECIAL = "a_%\\'\""
VALUES = sorted(
    {"".join(chars) for n in (1, 2) for chars in product(_SPECIAL, repeat=n)}
    | {"a_b", "a%b", "axb", "A_B", "aXb", "a\\b", "a\\_b", "a\\%b", "ab", "b", "%", "_"}
)
_PATTERN_CHARS = "aAbx_%\\'\""
_PROFILE = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@dataclass
class World:
    """One run per value (param ``p``, tag ``t``) and one registered model per value (tag ``v``),
    plus the runs as Python objects for the in-memory back-end."""

    tracking: TrackingService
    registry: RegistryService
    runs: list[Run]

    def run_values(self, filter_string: str) -> set[str]:
        with self.tracking.db.read() as conn:
            ids = search_run_ids(conn, filter_string=filter_string, max_results=50_000).run_ids
        by_id = {run.id: run.params["p"] for run in self.runs}
        return {by_id[run_id] for run_id in ids}

    def memory_values(self, filter_string: str) -> set[str]:
        check = predicate(parse(filter_string, RUN_SCHEMA))
        return {run.params["p"] for run in self.runs if check(_run_lookup(run))}

    def model_values(self, filter_string: str) -> set[str]:
        return {model.tags["v"] for model in self.registry.search_models(filter_string)}


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "h", db_uri=db_uri)) as opened:
        yield opened


@pytest.fixture
def world(store: Store) -> Iterator[World]:
    tracking = TrackingService(store, capture=False)
    registry = RegistryService(store)
    ids = []
    for n, value in enumerate(VALUES):
        run = tracking.create_run(experiment="filters", name=f"r{n}")
        tracking.log_params(run.id, {"p": value})
        tracking.set_tags(run.id, {"t": value})
        if n % 4:
            tracking.log_metrics(run.id, {"m": math.nan if n % 7 == 0 else float(n % 5)})
        if n % 3 == 0:
            tracking.end_run(run.id)
        ids.append(run.id)
        registry.create_model(f"m{n}", tags={"v": value}, policy=ApprovalPolicy(rules=()))
    with store.db.write() as conn:  # every fifth run's process died long ago: STALE
        stale = [run_id for n, run_id in enumerate(ids) if n % 5 == 1 and n % 3]
        conn.execute(t.runs.update().where(t.runs.c.id.in_(stale)).values(heartbeat_at=1))
    tracking.flush()
    try:
        yield World(tracking, registry, tracking.get_runs(ids))
    finally:
        tracking.close()


def _run_lookup(run: Run) -> Callable[[str, str], Any]:
    def lookup(entity: str, key: str) -> Any:
        if entity == "metrics":
            return run.metrics[key].value if key in run.metrics else None
        if entity in ("params", "tags"):
            return (run.params if entity == "params" else run.tags).get(key)
        return {
            "run_id": run.id,
            "run_name": run.name,
            "status": run.status.value,
            "user_id": run.user,
            "experiment_id": run.experiment_id,
            "start_time": run.start_time,
            "end_time": run.end_time,
        }[key]

    return lookup


# --- the reference -------------------------------------------------------------------------------


def _reference_like(pattern: str, value: str, *, fold_case: bool) -> bool:
    regex, i = "", 0
    while i < len(pattern):
        if pattern[i] == "\\" and pattern[i + 1 : i + 2] in ("%", "_", "\\"):
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += {"%": ".*", "_": "."}.get(pattern[i], re.escape(pattern[i]))
        i += 1
    flags = re.DOTALL | (re.IGNORECASE if fold_case else 0)
    return re.fullmatch(regex, value, flags) is not None


def _reference(op: str, operand: str | tuple[str, ...], value: str) -> bool:
    if isinstance(operand, tuple):
        return (value in operand) == (op == "IN")
    if op in ("LIKE", "ILIKE"):
        return _reference_like(operand, value, fold_case=op == "ILIKE")
    return (value == operand) == (op == "=")


# --- rendering: every legal way to quote the same thing -------------------------------------------


def _literal(text: str, quote: str, backslashed: bool) -> str:
    escaped = text.replace("\\", "\\\\")
    escaped = escaped.replace(quote, ("\\" + quote) if backslashed else quote * 2)
    return quote + escaped + quote


@st.composite
def _string_comparisons(draw: st.DrawFn) -> tuple[str, str | tuple[str, ...], Callable[..., str]]:
    """An operator, its operand and a renderer ``(column) -> filter text`` quoting it randomly."""
    op = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"]))
    text = st.text(alphabet=_PATTERN_CHARS, min_size=0, max_size=5)
    operand: str | tuple[str, ...]
    if op in ("IN", "NOT IN"):
        operand = tuple(
            draw(st.lists(st.one_of(st.sampled_from(VALUES), text), min_size=1, max_size=4))
        )
    else:
        operand = draw(st.one_of(st.sampled_from(VALUES), text))
    quotes = draw(st.lists(st.sampled_from(["'", '"']), min_size=6, max_size=6))
    backslashed = draw(st.lists(st.booleans(), min_size=6, max_size=6))
    keyword = draw(st.sampled_from([op, op.lower(), op.title()]))

    def render(column: str) -> str:
        if isinstance(operand, tuple):
            items = (
                _literal(item, quotes[n % 6], backslashed[n % 6]) for n, item in enumerate(operand)
            )
            return f"{column} {keyword} ({', '.join(items)})"
        return f"{column} {keyword} {_literal(operand, quotes[0], backslashed[0])}"

    return op, operand, render


_RUN_COLUMNS = ["params.p", "param.`p`", 'params."p"', "parameters.'p'"]
_TAG_COLUMNS = ["tags.t", "tag.`t`", "tags.'t'"]


@_PROFILE
@given(comparison=_string_comparisons(), columns=st.data())
def test_quoting_and_like_escapes_mean_the_same_on_every_back_end(
    world: World, comparison: tuple[str, Any, Callable[[str], str]], columns: st.DataObject
) -> None:
    op, operand, render = comparison
    expected = {value for value in VALUES if _reference(op, operand, value)}
    on_params = render(columns.draw(st.sampled_from(_RUN_COLUMNS)))
    on_tags = render(columns.draw(st.sampled_from(_TAG_COLUMNS)))
    assert world.run_values(on_params) == expected, on_params
    assert world.run_values(on_tags) == expected, on_tags
    assert world.memory_values(on_params) == expected, on_params
    assert world.model_values(render("tags.v")) == expected, render("tags.v")


# --- whole filters: the SQL and in-memory back-ends agree ----------------------------------------

_NUMBERS = st.sampled_from([-1, 0, 0.5, 1, 2, 2.5, 3, 4, 5])


@st.composite
def _run_filters(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        kind = draw(st.sampled_from(["string", "metric", "status", "time", "missing"]))
        if kind == "string":
            parts.append(draw(_string_comparisons())[2](draw(st.sampled_from(_TAG_COLUMNS))))
        elif kind == "metric":
            op = draw(st.sampled_from(["=", "!=", ">", ">=", "<", "<="]))
            parts.append(f"metrics.m {op} {draw(_NUMBERS)}")
        elif kind == "status":
            status = draw(st.sampled_from(["RUNNING", "STALE", "FINISHED", "running"]))
            op = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE"]))
            parts.append(f"attributes.status {op} '{status}'")
        elif kind == "time":
            op = draw(st.sampled_from(["=", "!=", ">", "<"]))
            parts.append(f"attributes.start_time {op} {draw(st.sampled_from([0, 1, 10**15]))}")
        else:
            op = draw(st.sampled_from(["=", "!=", "NOT IN"]))
            parts.append(f"params.absent {op} " + ("('x')" if op == "NOT IN" else "'x'"))
    return draw(st.sampled_from([" AND ", " and ", "\nAnd "])).join(parts)


@_PROFILE
@given(filter_string=_run_filters())
def test_sql_and_memory_back_ends_agree_on_run_filters(world: World, filter_string: str) -> None:
    assert world.run_values(filter_string) == world.memory_values(filter_string), filter_string


def test_the_catalog_has_every_case(world: World) -> None:
    """The generated searches above see NaN, missing metrics and each status."""
    statuses = {run.status.value for run in world.runs}
    assert statuses == {"RUNNING", "STALE", "FINISHED"}
    assert any(math.isnan(run.metrics["m"].value) for run in world.runs if "m" in run.metrics)
    assert world.memory_values("status = 'STALE'") == world.run_values("status = 'STALE'") != set()


# --- regressions and the language's own guarantees ------------------------------------------------


def test_escaped_wildcards_are_literal_everywhere(world: World) -> None:
    for column, values in (("params.p", world.run_values), ("tags.v", world.model_values)):
        assert values(f"{column} LIKE 'a\\_b'") == {"a_b"}
        assert values(f"{column} LIKE 'a\\%b'") == {"a%b"}
        # The string is unquoted first (\\ is one backslash), then read as a LIKE pattern.
        assert values(f"{column} LIKE 'a\\\\\\_b'") == {"a\\_b", "a\\%b"}
        assert values(f"{column} LIKE 'a\\\\\\\\\\_b'") == {"a\\_b"}
        assert values(f"{column} ILIKE 'a\\_b'") == {"a_b", "A_B"}
        assert values(f"{column} LIKE 'a_b'") == {"a_b", "a%b", "axb", "aXb", "a\\b"}
    assert world.memory_values("params.p LIKE 'a\\_b'") == {"a_b"}


@pytest.mark.parametrize(
    ("filter_string", "absent_matches", "holder_matches"),
    [
        ("tags.nothing != 'x'", True, True),
        ("tags.nothing = 'f'", True, False),
        ("tags.nothing NOT IN ('x', 'y')", True, True),
        ("tags.nothing LIKE 'f%'", True, False),
        ("tags.nothing = 'x'", False, False),
        ("tags.nothing != 'f'", False, True),
        ("tags.nothing ILIKE 'Z%'", False, True),
    ],
)
def test_an_absent_value_reads_the_same_on_both_back_ends(
    world: World, filter_string: str, absent_matches: bool, holder_matches: bool
) -> None:
    """A key in ``absent_values`` (MLflow's ``mlflow.prompt.is_prompt``, read as 'false' when a
    model lacks it) is read as that value by the SQL and in-memory back-ends alike; records that
    hold the key (here as 'zzz') are compared as usual."""
    tags = Entity("tags", frozenset({"tag", "tags"}), absent_values={"nothing": "f"})
    schema = Schema((RUN_SCHEMA.entities[0], tags), example="tags.t = 'x'")
    holders = {run.id for run in world.runs[::2]}
    for run_id in holders:
        world.tracking.set_tags(run_id, {"nothing": "zzz"})
    found = parse(filter_string + " AND tags.t NOT IN ('a')", schema)
    with world.tracking.db.read() as conn:
        query = sa.select(t.runs.c.id).where(*where(found, run_columns(True), conn.dialect.name))
        in_sql = set(conn.execute(query).scalars())
    runs = world.tracking.get_runs([run.id for run in world.runs])
    in_memory = {run.id for run in runs if predicate(found)(_run_lookup(run))}
    expected = {
        run.id
        for run in runs
        if run.tags["t"] != "a" and (holder_matches if run.id in holders else absent_matches)
    }
    assert in_sql == in_memory == expected


def test_an_absent_key_matches_nothing_by_default(world: World) -> None:
    """MLflow's rule for runs and registry searches alike: no value, no match, not even ``!=``."""
    assert world.run_values("tags.nothing != 'x'") == set()
    assert world.memory_values("tags.nothing != 'x'") == set()
    assert world.model_values("tags.nothing != 'x'") == set()


def test_comparisons_are_typed_and_bounded() -> None:
    assert parse("", RUN_SCHEMA) == Filter((), RUN_SCHEMA)
    (comparison,) = parse("run.`Run Name` IN ('a''b', \"c\\\"d\")", RUN_SCHEMA).comparisons
    assert comparison == Comparison("attributes", "run_name", "IN", ("a'b", 'c"d'))
    many = " AND ".join(["metrics.m > 1"] * (MAX_COMPARISONS + 1))
    with pytest.raises(InvalidInput, match=f"at most {MAX_COMPARISONS}"):
        parse(many, RUN_SCHEMA)


@pytest.mark.parametrize("text", ["params.p = 'a\x00'", "tags.`\udfff` = 'x'", "\ud800"])
def test_unstorable_characters_are_refused_with_a_message_that_encodes(text: str) -> None:
    with pytest.raises(InvalidInput, match="cannot appear in a filter") as caught:
        parse(text, RUN_SCHEMA)
    caught.value.message.encode("utf-8")
