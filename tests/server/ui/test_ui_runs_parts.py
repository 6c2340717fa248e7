"""The runs pages' pure parts: the table's query and columns, and the compare page's figures."""

from __future__ import annotations

import pytest

from loopwright.errors import InvalidInput
from loopwright.server.ui._compare import parallel, run_ids_of
from loopwright.server.ui._run_table import MAX_COLUMNS, RunQuery, caret_of, columns_of
from loopwright.tracking._filter import parse_run_order
from loopwright.tracking.entities import Metric, Run, RunStatus


def _run(run_id: str, params: dict[str, str], metrics: dict[str, float]) -> Run:
    return Run(
        id=run_id, experiment_id="e", name=run_id, status=RunStatus.FINISHED,
        lifecycle_stage="active", start_time=0, end_time=1, user=None, host=None,
        entry_point=None, parent_run_id=None, error=None, params=params,
        metrics={k: Metric(k, v, 0, 0) for k, v in metrics.items()},
    )  # fmt: skip


def test_a_sort_on_any_key_becomes_a_valid_order_by() -> None:
    for key in ("auc", "val/acc", "we`ird key", "a.b"):
        query = RunQuery.of({"sort": f"metrics.{key}", "desc": "1"})
        (order,) = parse_run_order(query.order_by)
        assert (order.entity, order.key, order.ascending) == ("metrics", key, False)
    default = RunQuery.of({})
    assert default.order_by == ["attributes.start_time DESC"] and default.params()["sort"] is None
    assert RunQuery.of({"sort": "start_time"}).desc is False  # chosen explicitly: ascending


def test_the_parsers_position_is_found_in_its_message() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_run_order(["metrics.auc sideways"])
    assert caret_of(str(caught.value)) == 12
    assert caret_of("no position here") is None


def test_columns_are_the_pages_keys_capped_with_the_sorted_one_first() -> None:
    runs = [
        _run("a", {f"p{i}": "1" for i in range(10)}, {f"m{i}": 1.0 for i in range(8)}),
        _run("b", {"p0": "2"}, {"m0": 2.0}),
    ]
    shown, hidden = columns_of(runs, "params.p9")
    assert shown[0] == "params.p9" and len(shown) == MAX_COLUMNS
    assert shown[1] == "metrics.m0"  # held by both runs: first of the metrics
    assert len(shown) + len(hidden) == 18 and not set(shown) & set(hidden)


def test_compare_ids_come_from_commas_and_repeats_once_each() -> None:
    assert run_ids_of(["a,b", "b", " c "]) == ["a", "b", "c"]
    with pytest.raises(InvalidInput, match="at most 20"):
        run_ids_of([",".join(str(i) for i in range(21))])


def test_parallel_coordinates_put_numbers_on_scales_and_words_in_order() -> None:
    runs = [
        _run("a", {"lr": "0.1", "model": "rf"}, {"auc": 0.9}),
        _run("b", {"lr": "0.3", "model": "gb"}, {"auc": 0.7}),
        _run("c", {"model": "gb"}, {}),  # no lr, no auc: its line breaks
    ]
    figure = parallel(runs, {r.id: r.id for r in runs}, "auc")
    assert figure is not None
    assert [a.label for a in figure.axes] == ["params.lr", "params.model", "metrics.auc"]
    lr, model, _ = figure.axes
    assert [text for _, text in lr.ticks] == ["0.1", "0.2", "0.3"]
    assert [text for _, text in model.ticks] == ["gb", "rf"]  # ordered categories
    c = figure.lines[2]
    assert len(c.dots) == 1 and c.points.startswith("M") and "L" not in c.points
    a, b = figure.lines[0].dots, figure.lines[1].dots
    assert a[0][1] > b[0][1]  # lr 0.1 sits lower than 0.3 (SVG y grows downwards)
