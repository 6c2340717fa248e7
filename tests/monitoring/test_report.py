"""Monitor reports: self-contained HTML (parses, one chart per expected figure, no network
reference, user strings escaped) and compact JSON (size and content)."""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import replace
from html.parser import HTMLParser
from typing import Any

import pytest

from loopwright.errors import InvalidInput
from loopwright.monitoring import (
    Alert,
    AlertRule,
    Distribution,
    DriftResult,
    Monitor,
    MonitorRun,
    Performance,
    TestResult,
)
from loopwright.monitoring.report import JSON_DRIFT_SERIES, TOP_CATEGORIES, render, render_drift

HOUR = 3_600_000
START = 1_764_892_800_000  # 2025-12-05 00:00 UTC
EVIL = "<script>alert('x')</script>"


def _drift(columns: Sequence[str], *, seed: int, shifted: Sequence[str] = ()) -> DriftResult:
    """KS (with its p-value), PSI and Wasserstein per numeric column, with histograms;
    categorical columns (``cat_*``) get chi-square, PSI and Jensen-Shannon."""
    rng = random.Random(seed)
    tests: list[TestResult] = []
    distributions: list[Distribution] = []
    for column in columns:
        shift = column in shifted
        categorical = column.startswith("cat_") or column == EVIL
        if categorical:  # chi2 only gives a p-value: its statistic, drifting below 0.05
            p = rng.uniform(0, 0.01) if shift else rng.uniform(0.06, 1.0)
            tests.append(TestResult(column, "chi2", p, 0.05, p < 0.05, p_value=p))
        else:  # KS distance D, gated by its p-value
            d = rng.uniform(0.12, 0.3) if shift else rng.uniform(0.005, 0.05)
            p = rng.uniform(0, 0.001) if shift else rng.uniform(0.2, 1.0)
            tests.append(TestResult(column, "ks", d, 0.1, shift, p_value=p))
        for name in ("psi", "jensenshannon" if categorical else "wasserstein"):
            value = rng.uniform(0.25, 0.6) if shift else rng.uniform(0.0, 0.08)
            tests.append(TestResult(column, name, value, 0.1, value > 0.1))
        if categorical:
            labels = tuple([EVIL, *(f"city_{i:02d}" for i in range(29))])
            weights = [rng.random() for _ in labels]
            total = sum(weights)
            ref = tuple(w / total for w in weights)
            cur = tuple(reversed(ref)) if shift else ref
            distributions.append(Distribution(column, "categorical", labels, ref, cur))
        else:
            edges = tuple(-3.0 + 0.6 * i for i in range(11))
            ref = tuple(math.exp(-((e + 0.3) ** 2) / 2) for e in edges[:-1])
            ref = tuple(v / sum(ref) for v in ref)
            cur = ref[1:] + ref[:1] if shift else ref
            distributions.append(Distribution(column, "numeric", edges, ref, cur))
    drifted = tuple(c for c in columns if c in shifted)
    share = len(drifted) / len(columns)
    return DriftResult(
        tests=tuple(tests),
        dataset_drift=share >= 0.3,
        drifted_columns=drifted,
        share_drifted=share,
        rule="drift when at least 30% of the tested columns drift",
        correction=None,
        reference_rows=50_000,
        current_rows=4_812,
        distributions=tuple(distributions),
    )


def _columns(n: int) -> list[str]:
    numeric = [f"input.num_{i:02d}" for i in range(n - n // 5)]
    return numeric + [f"cat_{i}" for i in range(n // 5)]


def _monitor(name: str = "churn-drift") -> Monitor:
    return Monitor(
        id="m1",
        name=name,
        deployment="churn",
        reference="auto",
        reference_id="r1",
        window_s=3600,
        every_s=900,
        tests=(),
        columns=(),
        thresholds={},
        alerts=(AlertRule.parse("drift_share>0.3"), AlertRule.parse("accuracy<0.8")),
        webhook=None,
        webhook_format="json",
        task="classification",
        description=None,
        created_by="alice",
        created_at=START,
        updated_at=START,
        last_run_at=START + 100 * HOUR,
    )


def _run(
    n: int,
    columns: Sequence[str],
    *,
    shifted: Sequence[str] = (),
    status: str = "ok",
    labelled: bool = True,
) -> MonitorRun:
    performance = None
    if labelled and status == "ok":
        accuracy = 0.91 - 0.002 * n
        performance = Performance(
            task="classification",
            metrics={"accuracy": accuracy, "f1": accuracy - 0.03, "roc_auc": 0.95 - 0.001 * n},
            rows=1_200,
            predictions=4_812,
            coverage=1_200 / 4_812,
            by_version={"churn/3": {"accuracy": accuracy}, "churn/4": {"accuracy": accuracy - 0.1}},
        )
    return MonitorRun(
        id=f"run-{n:04d}",
        monitor="m1",
        started_at=START + n * HOUR + 5,
        finished_at=START + n * HOUR + 900,
        window_start=START + (n - 1) * HOUR,
        window_end=START + n * HOUR,
        status=status,  # type: ignore[arg-type]
        rows=0 if status == "no_data" else 4_812,
        model_versions=("churn/3", "churn/4"),
        drift=_drift(columns, seed=n, shifted=shifted) if status == "ok" else None,
        performance=performance,
        alerts=("alert-1",) if shifted else (),
        error="window read failed: s3 bucket 'logs' <denied>" if status == "failed" else None,
    )


_VOID = {"meta", "br", "hr", "img", "input", "link"}


class _Page(HTMLParser):
    """Collects tags, text and attribute values; HTMLParser raises nothing, so the checks are
    on what it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.stack: list[str] = []
        self.text: list[str] = []
        self.attributes: list[str] = []
        self.svg_titles: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in _VOID:
            self.stack.append(tag)
        self.scripts += tag == "script"
        self.attributes += [value or "" for _, value in attrs]
        if tag == "svg":
            self.svg_titles.append(dict(attrs).get("aria-label") or "")

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert parser.stack == [], f"unclosed: {parser.stack}"
    return parser


def _check_self_contained(page: str) -> _Page:
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"\b(src|href)\s*=", page), "a resource reference"
    parsed = _parse(page)
    assert parsed.scripts == 0
    return parsed


def test_html_has_header_table_and_one_chart_per_figure() -> None:
    columns = _columns(10)
    history = [_run(n, columns, shifted=columns[:3] if n > 6 else ()) for n in range(1, 9)]
    page = render(_monitor(), history[-1], history, format="html")
    parsed = _check_self_contained(page)
    text = " ".join(parsed.text)
    for expected in ("churn-drift", "churn/3, churn/4", "Dataset drift", "30% of those", "rule"):
        assert expected.lower() in text.lower()
    assert "2025-12-05 07:00:00Z to 2025-12-05 08:00:00Z" in text
    titles = parsed.svg_titles
    # 10 distributions, 10 drift-over-time lines, accuracy/f1/roc_auc/coverage over time
    assert len(titles) == 10 + 10 + 4
    assert titles.count("input.num_00: ks") == 1
    assert titles.index("input.num_00: ks") < titles.index("cat_0: chi2")  # drifted first
    assert {"accuracy", "f1", "roc_auc", "coverage"} <= set(titles)
    # drifted cells are highlighted: 3 columns x 3 tests
    assert page.count('<td class="drift"') == 9
    assert page.count("<small>p 0.000") == 3  # KS p-values of the drifted columns
    assert page.count("<small>p ") == 8  # KS only: chi2's p-value is its statistic
    # alerts: ids from the run when no Alert is passed
    assert "alert-1" in text


def test_categorical_charts_keep_the_top_categories_and_lump_the_rest() -> None:
    result = _drift(["cat_0"], seed=1)
    page = render_drift(result, format="html", title="cities")
    parsed = _check_self_contained(page)
    bars = page.count('class="cur"')
    assert bars == TOP_CATEGORIES + 1
    assert "10 others" in " ".join(parsed.text)


def test_user_strings_are_escaped_and_inert() -> None:
    columns = ["input.num_00", EVIL]
    monitor = _monitor(name=f"m{EVIL}")
    history = [_run(n, columns, shifted=[EVIL]) for n in (1, 2, 3)]
    alert = Alert(
        id="alert-1",
        monitor="m1",
        rule=f"psi:{EVIL}>0.2",
        status="open",
        value=0.41,
        threshold=0.2,
        message=f"psi on {EVIL} is 0.41",
        occurrences=3,
        opened_at=START,
        last_seen_at=START + 3 * HOUR,
        resolved_at=None,
    )
    resolved = replace(alert, id="alert-0", rule="drift_share>0.3", status="resolved")
    page = render(monitor, history[-1], history, format="html", alerts=[alert, resolved])
    parsed = _check_self_contained(page)
    assert "<script" not in page
    assert "&lt;script&gt;" in page
    # the column name and the category label come back as text, never as markup
    assert any(EVIL in t for t in parsed.text)
    assert any(EVIL in t for t in parsed.svg_titles)
    assert "psi on <script>" in " ".join(parsed.text)
    assert "drift_share>0.3" not in page  # resolved alerts are not listed


def test_multivariate_and_quality_tests_share_the_table_not_the_charts_over_time() -> None:
    columns = _columns(5)
    extra = (
        TestResult("*", "mmd", 0.031, 0.01, True, p_value=0.002, kind="multivariate"),
        TestResult("input.num_00", "missing_share", 0.2, 0.05, True, kind="quality"),
    )
    history = []
    for n in (1, 2, 3):
        run = _run(n, columns)
        assert run.drift is not None
        history.append(replace(run, drift=replace(run.drift, tests=run.drift.tests + extra)))
    page = render(_monitor(), history[-1], history, format="html")
    parsed = _check_self_contained(page)
    assert "* (all columns together)" in parsed.text
    assert "missing_share" in parsed.text and "mmd" in parsed.text
    assert page.count('<td class="drift"') == 2
    # one drift-over-time chart per column, on its drift test: none for "*" or the quality test
    assert len(parsed.svg_titles) == 5 + 5 + 4
    assert not any(t.startswith("*") or "missing_share" in t for t in parsed.svg_titles)
    data = json.loads(render(_monitor(), history[-1], history, format="json"))
    assert data["drift"]["columns"][-1] == "*"
    assert data["drift"]["kinds"][-2:] == ["multivariate", "quality"]


def test_empty_history_renders_the_run_alone() -> None:
    columns = _columns(5)
    run = _run(1, columns)
    page = render(_monitor(), run, [], format="html")
    parsed = _check_self_contained(page)
    assert "need two runs with data; this history has 1" in " ".join(parsed.text)
    assert len(parsed.svg_titles) == 5  # distributions only
    data = json.loads(render(_monitor(), run, [], format="json"))
    assert [row[0] for row in data["history"]["runs"]] == [run.window_end]


def test_no_data_and_failed_runs() -> None:
    columns = _columns(5)
    history = [_run(n, columns) for n in (1, 2, 3)]
    empty = _run(4, columns, status="no_data")
    failed = _run(5, columns, status="failed")
    page = render(_monitor(), empty, [*history, empty], format="html")
    parsed = _check_self_contained(page)
    text = " ".join(parsed.text)
    assert "No data: no row was logged in the window" in text
    assert "Tests" not in [t for t in parsed.text if t == "Tests"]
    # over time still drawn from the earlier runs, with a gap for the empty window
    assert len(parsed.svg_titles) == 5 + 4

    page = render(_monitor(), failed, [*history, empty, failed], format="html")
    parsed = _check_self_contained(page)
    assert "Run failed" in page
    assert "s3 bucket 'logs' <denied>" in " ".join(parsed.text)
    assert "&lt;denied&gt;" in page

    data = json.loads(render(_monitor(), failed, [*history, empty, failed], format="json"))
    assert data["run"]["status"] == "failed"
    assert data["run"]["error"].startswith("window read failed")
    assert data["drift"] is None and data["performance"] is None
    statuses = [row[data["history"]["fields"].index("status")] for row in data["history"]["runs"]]
    assert statuses == ["ok", "ok", "ok", "no_data", "failed"]


def test_history_is_ordered_deduplicated_and_stops_at_the_run() -> None:
    columns = _columns(5)
    runs = [_run(n, columns) for n in range(1, 7)]
    shuffled = [runs[3], runs[0], runs[5], runs[1], runs[2], runs[4], runs[2]]
    data = json.loads(render(_monitor(), runs[3], shuffled, format="json"))
    ends = [row[0] for row in data["history"]["runs"]]
    assert ends == [r.window_end for r in runs[:4]]


def test_json_is_small_and_complete_for_25_columns_and_100_runs() -> None:
    columns = _columns(25)
    shifted = columns[:4] + columns[-1:]
    history = [_run(n, columns, shifted=shifted if n % 10 == 0 else ()) for n in range(1, 101)]
    run = history[-1]
    text = render(_monitor(), run, list(reversed(history)), format="json")
    assert len(text.encode()) < 10_000, len(text.encode())
    data: dict[str, Any] = json.loads(text)
    drift = data["drift"]
    assert drift["columns"] == columns
    assert drift["tests"] == ["ks", "psi", "wasserstein", "chi2", "jensenshannon"]
    assert len(drift["drifted"]) == 5 * 3
    assert drift["dataset_drift"] is False and drift["share_drifted"] == 0.2
    ks = drift["statistic"][0][0]
    assert ks == float(f"{run.drift.tests[0].statistic:.4g}")  # type: ignore[union-attr]
    assert "distributions" not in drift and "distributions" not in text
    # every number is rounded to 4 significant digits
    numbers = re.findall(r"\d+\.\d+(?:e-?\d+)?", text)
    assert numbers and all(len(n.split("e")[0].replace(".", "").lstrip("0")) <= 4 for n in numbers)
    history_rows = data["history"]["runs"]
    assert len(history_rows) == 30 and history_rows[-1][0] == run.window_end
    fields = data["history"]["fields"]
    assert fields[-4:] == ["accuracy", "f1", "roc_auc", "coverage"]
    assert set(data["history"]["drifted_columns"]) == set(shifted)
    assert data["history"]["drifted_columns_left_out"] == 0
    series = data["history"]["drifted_columns"]["input.num_00"]
    assert series["test"] == "ks" and series["threshold"] == 0.1
    assert len(series["values"]) == 30 and series["values"][-1] == ks
    assert data["performance"]["by_version"]["churn/4"]["accuracy"] == pytest.approx(0.61, abs=1e-3)
    assert data["alerts"] == [{"id": "alert-1"}]
    assert data["monitor"]["alert_rules"] == ["drift_share>0.3", "accuracy<0.8"]


def test_json_stays_under_10_kb_when_every_column_drifts() -> None:
    columns = [f"input.customer_feature_{i:02d}" for i in range(25)]
    history = [_run(n, columns, shifted=columns) for n in range(1, 101)]
    text = render(_monitor(), history[-1], history, format="json")
    assert len(text.encode()) < 10_000, len(text.encode())
    data = json.loads(text)
    assert len(data["drift"]["drifted_columns"]) == 25
    assert list(data["history"]["drifted_columns"]) == columns[:JSON_DRIFT_SERIES]
    assert data["history"]["drifted_columns_left_out"] == 25 - JSON_DRIFT_SERIES


def test_nan_and_infinite_figures_are_null_in_json_and_dashes_in_html() -> None:
    result = DriftResult(
        tests=(
            TestResult("x", "psi", math.nan, 0.2, False),
            TestResult("x", "ks", 0.5, 0.05, False, p_value=math.inf),
        ),
        dataset_drift=False,
        drifted_columns=(),
        share_drifted=math.nan,
        rule="drift when at least 30% of the tested columns drift",
        correction="holm",
        reference_rows=10,
        current_rows=0,
    )
    data = json.loads(render_drift(result, format="json"))
    assert data["drift"]["statistic"] == [[None, 0.5]]
    assert data["drift"]["p_value"] == [[None, None]]
    assert data["drift"]["share_drifted"] is None
    page = render_drift(result, format="html")
    _check_self_contained(page)
    assert "n/a of those tested" in page and "corrected by holm" in page


def test_rendering_is_deterministic() -> None:
    columns = _columns(5)
    history = [_run(n, columns, shifted=columns[:1]) for n in range(1, 5)]
    for fmt in ("html", "json"):
        first = render(_monitor(), history[-1], history, format=fmt)
        again = render(_monitor(), history[-1], list(reversed(history)), format=fmt)
        assert first == again


def test_an_unknown_format_is_refused_naming_the_choices() -> None:
    result = _drift(["x"], seed=0)
    with pytest.raises(InvalidInput, match="'pdf' is not one of 'html', 'json'"):
        render_drift(result, format="pdf")  # type: ignore[arg-type]


def test_render_drift_json_has_a_title_and_no_history() -> None:
    data = json.loads(render_drift(_drift(_columns(5), seed=2), format="json", title="ci check"))
    assert data["title"] == "ci check"
    assert set(data) == {"title", "drift"}
