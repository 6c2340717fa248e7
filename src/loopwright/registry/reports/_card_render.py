"""Model cards as Markdown and as a self-contained HTML page.

A card becomes a list of blocks (headings, text, tables, bar charts) once; each format renders the
blocks. Every piece of text a user or the data supplied is escaped on the way out: Markdown gets
HTML entities too, since Markdown viewers pass raw HTML through.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .card import ModelCard

__all__ = ["NOT_PROVIDED", "render_html", "render_markdown"]

NOT_PROVIDED = "Not provided"
"""What a card shows in place of text its model owner has not written."""

_DASH = "—"


@dataclass(frozen=True)
class _Heading:
    level: int
    text: str


@dataclass(frozen=True)
class _Text:
    text: str
    kind: str = "p"  # p (user text, newlines kept) | note | warn


@dataclass(frozen=True)
class _Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    flagged: frozenset[int] = frozenset()  # row indexes to highlight


@dataclass(frozen=True)
class _Chart:
    title: str
    bars: Sequence[tuple[str, float, bool]]  # label, value, highlighted
    marker: float | None = None  # a threshold line
    marker_label: str = ""
    full: float | None = None  # the value of a full-width bar; the largest value by default


_Block = _Heading | _Text | _Table | _Chart


def render_markdown(card: ModelCard) -> str:
    out: list[str] = []
    for block in _blocks(card):
        if isinstance(block, _Heading):
            out.append(f"{'#' * block.level} {_md(block.text)}")
        elif isinstance(block, _Text):
            text = _md(block.text)
            out.append(
                {"note": f"_{text}_", "warn": f"> **Warning:** {text}"}.get(block.kind, text)
            )
        elif isinstance(block, _Table):
            lines = [_md_row(block.headers), _md_row(["---"] * len(block.headers))]
            for i, row in enumerate(block.rows):
                cells = [f"⚠ {row[0]}", *row[1:]] if i in block.flagged else row
                lines.append(_md_row(cells))
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def render_html(card: ModelCard) -> str:
    body: list[str] = []
    for block in _blocks(card):
        if isinstance(block, _Heading):
            body.append(f"<h{block.level}>{_h(block.text)}</h{block.level}>")
        elif isinstance(block, _Text):
            role = ' role="alert"' if block.kind == "warn" else ""
            body.append(f'<p class="{block.kind}"{role}>{_h(block.text)}</p>')
        elif isinstance(block, _Table):
            head = "".join(f"<th>{_h(cell)}</th>" for cell in block.headers)
            rows = [
                ("<tr class='flag'>" if i in block.flagged else "<tr>")
                + "".join(f"<td>{_h(cell)}</td>" for cell in row)
                + "</tr>"
                for i, row in enumerate(block.rows)
            ]
            body.append(
                f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            )
        else:
            body.append(_svg(block))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Model card: {_h(card.title)}</title><style>{_CSS}</style></head>\n"
        "<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n"
    )


_CSS = (
    "body{font:15px/1.5 system-ui,sans-serif;color:#1f2328;margin:0;background:#f6f8fa}"
    "main{max-width:60rem;margin:0 auto;padding:1rem 2rem;background:#fff}"
    "h1{border-bottom:2px solid #d0d7de}h2{margin-top:2rem;border-bottom:1px solid #d0d7de}"
    "table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #d0d7de;"
    "padding:.25rem .6rem;text-align:left;vertical-align:top}th{background:#f6f8fa}"
    "tr.flag td{background:#ffebe9;font-weight:600}p.p{white-space:pre-wrap}"
    "p.note{color:#656d76;font-style:italic}p.warn{background:#ffebe9;border-left:4px solid "
    "#cf222e;padding:.5rem}svg{display:block;margin:.5rem 0}svg text{font:12px sans-serif}"
    ".bar{fill:#0969da}.bar.flag{fill:#cf222e}.marker{stroke:#bf8700;stroke-dasharray:4 3}"
)


def _blocks(card: ModelCard) -> list[_Block]:
    d = card.details
    blocks: list[_Block] = [_Heading(1, f"Model card: {card.title}")]
    if d.get("description"):
        blocks.append(_Text(d["description"]))
    blocks += [
        _Heading(2, "Model details"),
        _pairs(["Field", "Value"], {k: d.get(v) for k, v in _DETAILS.items()}, _text),
    ]

    blocks.append(_Heading(2, "Intended use and limitations"))
    for key, paragraphs in card.considerations.items():
        blocks.append(_Heading(3, _title(key)))
        blocks += [_Text(p) for p in paragraphs] or [_Text(f"{NOT_PROVIDED}.", "note")]

    blocks.append(_Heading(2, "Training data"))
    if card.training_data:
        rows = [
            [_text(t["ref"]) if t["resolved"] else f"unresolved (id {t['id']})"]
            + [_text(t.get(k)) for k in ("content_hash", "rows", "columns", "files")]
            + [_size(t.get("size")), _text(t.get("produced_by_run"))]
            for t in card.training_data
        ]
        blocks.append(_Table(_TRAINING, rows))
    else:
        blocks.append(_Text("No training data recorded.", "note"))

    blocks += _metrics(card)
    blocks += _fairness(card.fairness)
    blocks += _signature(card.signature)
    blocks += _approvals(card.approvals)
    blocks += _lineage(card.lineage)

    blocks.append(_Heading(2, "Environment"))
    env = card.environment
    if env is None:
        return [*blocks, _Text("Not recorded.", "note")]
    blocks.append(_Text(f"Python {_text(env.get('python_version'))}"))
    if env.get("packages"):
        blocks.append(_pairs(["Package", "Version"], env["packages"], str))
    return blocks


_TRAINING = [
    "Dataset",
    "Content hash (BLAKE3)",
    "Rows",
    "Columns",
    "Files",
    "Size",
    "Produced by run",
]
_DETAILS = {
    "Name": "name", "Version": "version", "Reference": "ref", "Flavor": "flavor",
    "Stage": "stage", "Aliases": "aliases", "Status": "status",
    "Package hash (BLAKE3)": "package_hash", "Created by": "created_by",
    "Created at": "created_at", "Source": "source", "Source run": "source_run", "Tags": "tags",
}  # fmt: skip


_FAIRNESS = [
    "demographic_parity_difference", "demographic_parity_ratio", "equal_opportunity_difference",
    "equalized_odds_difference", "disparate_impact_ratio",
]  # fmt: skip


def _metrics(card: ModelCard) -> list[_Block]:
    blocks: list[_Block] = [_Heading(2, "Metrics"), _Heading(3, "Registered metrics")]
    if card.metrics:
        blocks.append(_pairs(["Metric", "Value"], card.metrics, _num))
    else:
        blocks.append(_Text("No metrics recorded.", "note"))
    evaluation = card.evaluation
    if not evaluation:
        return [*blocks, _Text("No held-out evaluation attached.", "note")]
    overall = evaluation["metrics"]
    summary = f"Task: {evaluation['task']}, {overall['n']} rows."
    if evaluation.get("positive_label") is not None:
        summary += f" Positive label: {evaluation['positive_label']}."
    blocks += [_Heading(3, "Evaluation"), _Text(summary)]
    blocks.append(_pairs(["Metric", "Value"], overall, _num))
    slices = evaluation.get("slices") or []
    if not slices:
        return blocks
    names = [k for k in overall if k != "n"]
    small = evaluation.get("min_slice_size", 0)
    blocks.append(_Heading(3, "Per-slice metrics"))
    blocks.append(
        _Table(
            ["Feature", "Slice", "n", *names, "Note"],
            [
                [s["feature"], s["value"], str(s["count"])]
                + [_num(s["metrics"].get(k)) for k in names]
                + [f"small slice (n < {small})" if s["small"] else ""]
                for s in slices
            ],
            frozenset(i for i, s in enumerate(slices) if s["small"]),
        )
    )
    main = "accuracy" if evaluation["task"] == "classification" else "rmse"
    for feature in dict.fromkeys(s["feature"] for s in slices):
        bars = [
            (s["value"], float(s["metrics"][main]), bool(s["small"]))
            for s in slices
            if s["feature"] == feature
        ]
        full = 1.0 if main == "accuracy" else None
        blocks.append(_Chart(f"{main} by {feature}", bars, full=full))
    return blocks


def _fairness(fairness: Mapping[str, Any] | None) -> list[_Block]:
    blocks: list[_Block] = [_Heading(2, "Fairness")]
    if not fairness:
        return [*blocks, _Text("Not assessed: no sensitive attribute was evaluated.", "note")]
    threshold, failing = fairness["threshold"], fairness["failing_groups"]
    blocks.append(
        _Text(
            f"Sensitive attribute: {fairness['attribute']}; positive label: "
            f"{fairness['positive_label']}; reference group: {fairness['reference_group']}."
        )
    )
    ratio = _num(fairness["disparate_impact_ratio"])
    if failing:
        blocks.append(
            _Text(
                f"Fails the four-fifths rule: {', '.join(failing)} selected at under "
                f"{threshold:.0%} of the reference group's rate (disparate impact ratio {ratio}).",
                "warn",
            )
        )
    else:
        blocks.append(_Text(f"Passes the four-fifths rule (disparate impact ratio {ratio})."))
    summary = _pairs(["Metric", "Value"], {_title(k): fairness[k] for k in _FAIRNESS}, _num)
    low = {
        i for i, key in enumerate(_FAIRNESS) if key.endswith("ratio") and fairness[key] < threshold
    }
    blocks.append(_Table(summary.headers, summary.rows, frozenset(low)))
    groups = fairness["groups"]
    rows = [
        [g["group"], str(g["count"])]
        + [_num(g[k]) for k in ("selection_rate", "true_positive_rate", "false_positive_rate")]
        + [_num(g["impact_ratio"]), "fails" if g["group"] in failing else "passes"]
        for g in groups
    ]
    headers = ["Group", "n", "Selection rate", "TPR", "FPR", "Impact ratio", "Four-fifths rule"]
    flagged = frozenset(i for i, g in enumerate(groups) if g["group"] in failing)
    blocks.append(_Table(headers, rows, flagged))
    reference = next(g for g in groups if g["group"] == fairness["reference_group"])
    bars = [(g["group"], float(g["selection_rate"]), g["group"] in failing) for g in groups]
    marker = threshold * reference["selection_rate"]
    label = f"{threshold:.0%} of {reference['group']}"
    blocks.append(_Chart(f"Selection rate by {fairness['attribute']}", bars, marker, label, 1.0))
    return blocks


def _signature(signature: Mapping[str, Sequence[Mapping[str, Any]]] | None) -> list[_Block]:
    blocks: list[_Block] = [_Heading(2, "Signature")]
    if not signature:
        return [*blocks, _Text("No signature recorded.", "note")]
    for part, columns in signature.items():
        blocks.append(_Heading(3, part.capitalize()))
        rows = [[_text(c.get(k)) for k in ("name", "type", "shape", "required")] for c in columns]
        blocks.append(_Table(["Name", "Type", "Shape", "Required"], rows))
    return blocks


def _approvals(approvals: Sequence[Mapping[str, Any]]) -> list[_Block]:
    blocks: list[_Block] = [_Heading(2, "Approval history")]
    if not approvals:
        return [*blocks, _Text("No approval requests.", "note")]
    headers = ["Requested at", "Request", "Status", "Requested by", "Needs", "Comment"]
    rows = [
        [
            _text(a["created_at"]),
            f"{a['action']}: {a['target']}",
            a["status"],
            a["requested_by"],
            f"{a['required']['approvals']} by {a['required']['role']}",
            _text(a.get("comment")),
        ]
        for a in approvals
    ]
    rejected = frozenset(i for i, a in enumerate(approvals) if a["status"] == "rejected")
    blocks.append(_Table(headers, rows, rejected))
    decisions = [
        [_text(d["created_at"]), f"{a['action']}: {a['target']}", d["actor"], _text(d.get("role")),
         d["decision"], _text(d.get("comment"))]
        for a in approvals
        for d in a["decisions"]
    ]  # fmt: skip
    if decisions:
        headers = ["Time", "Request", "Actor", "Role", "Decision", "Comment"]
        blocks += [_Heading(3, "Decisions"), _Table(headers, decisions)]
    return blocks


def _lineage(lineage: Mapping[str, Any]) -> list[_Block]:
    blocks: list[_Block] = [_Heading(2, "Lineage")]
    run = lineage.get("run")
    datasets = lineage.get("datasets") or []
    trained_on = ", ".join(
        (d["ref"] or f"unresolved dataset version {d['id']}")
        + (f" (produced by run {d['produced_by_run']})" if d.get("produced_by_run") else "")
        for d in datasets
    )
    items = [
        f"Data: {trained_on or 'none recorded'}",
        "Source run: " + ("none recorded" if run is None else _run_text(run)),
        f"Model version: {lineage.get('model_version')} (source {_text(lineage.get('source'))}, "
        f"package BLAKE3 {_text(lineage.get('package_hash'))})",
    ]
    blocks += [_Text(item) for item in items]
    params = (run or {}).get("params") or {}
    if params:
        blocks.append(_Heading(3, "Training parameters"))
        blocks.append(_pairs(["Parameter", "Value"], params, str))
    return blocks


def _run_text(run: Mapping[str, Any]) -> str:
    text = str(run["id"])
    if run.get("name"):
        text += f" ({run['name']}, experiment {run.get('experiment_id')}, {run.get('status')})"
    if run.get("user"):
        text += f" by {run['user']}"
    if run.get("git_commit"):
        dirty = ", uncommitted changes" if run.get("git_dirty") else ""
        text += f"; code at commit {run['git_commit']} on {_text(run.get('git_branch'))}{dirty}"
    if run.get("entry_point"):
        text += f"; entry point {run['entry_point']}"
    return text


def _pairs(headers: list[str], values: Mapping[str, Any], show: Callable[[Any], str]) -> _Table:
    return _Table(headers, [[key, show(value)] for key, value in values.items()])


def _text(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return _DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _num(value: Any) -> str:
    if value is None:
        return _DASH
    if isinstance(value, int) or (
        isinstance(value, float) and value.is_integer() and abs(value) < 1e15
    ):
        return str(int(value))
    if not math.isfinite(value) or abs(value) < 1e-3 or abs(value) >= 1e6:
        return f"{value:.4g}"
    return f"{value:.4f}".rstrip("0")


def _size(value: Any) -> str:
    if not isinstance(value, int):
        return _DASH
    power = min((value.bit_length() - 1) // 10, 4) if value > 0 else 0
    return f"{value} B" if not power else f"{value / 1024**power:.1f} {'KMGT'[power - 1]}iB"


def _title(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _md(text: str) -> str:
    return html.escape(text, quote=False)


def _md_row(cells: Iterable[str]) -> str:
    escaped = (
        _md(cell).replace("|", "\\|").replace("\r", "").replace("\n", "<br>") for cell in cells
    )
    return "| " + " | ".join(escaped) + " |"


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _svg(chart: _Chart) -> str:
    """A horizontal bar chart; labels longer than 24 characters are cut (the tooltip has all)."""
    left, width, row, top = 190, 300, 24, 28
    scale = chart.full or max([v for _, v, _ in chart.bars] + [chart.marker or 0.0, 0.0]) or 1.0
    height = top + row * len(chart.bars) + 10
    parts = [
        f'<svg width="{left + width + 80}" height="{height}" role="img" '
        f'aria-label="{_h(chart.title)}"><title>{_h(chart.title)}</title>',
        f'<text x="0" y="16" font-weight="bold">{_h(chart.title)}</text>',
    ]
    for i, (label, value, flagged) in enumerate(chart.bars):
        y = top + i * row
        short = label if len(label) <= 24 else label[:23] + "…"
        bar = max(value, 0.0) / scale * width
        parts.append(
            f"<g><title>{_h(label)}: {_num(value)}</title>"
            f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{_h(short)}</text>'
            f'<rect class="bar{" flag" if flagged else ""}" x="{left}" y="{y}" '
            f'width="{bar:.1f}" height="16"></rect>'
            f'<text x="{left + bar + 4:.1f}" y="{y + 13}">{_num(value)}</text></g>'
        )
    if chart.marker is not None:
        x = left + chart.marker / scale * width
        parts.append(
            f'<line class="marker" x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 6}">'
            f'</line><text x="{x + 3:.1f}" y="{top - 8}">{_h(chart.marker_label)}</text>'
        )
    return "".join(parts) + "</svg>"
