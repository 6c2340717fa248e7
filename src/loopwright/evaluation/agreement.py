"""Agreement between a judge and human labels: accuracy and Cohen's kappa for categories
(bools are categories), Spearman's rank correlation and mean absolute error for numbers.

Example:
    >>> categorical_agreement(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    {'accuracy': 0.75, 'cohen_kappa': 0.5}
    >>> numeric_agreement([1, 2, 3], [1, 3, 2])
    {'spearman': 0.5, 'mae': 0.6666666666666666}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

__all__ = ["categorical_agreement", "cohen_kappa", "numeric_agreement", "ranks", "spearman"]


def cohen_kappa(judge: Sequence[object], human: Sequence[object]) -> float | None:
    """(p_o - p_e) / (1 - p_e); None when both raters use one and the same single label."""
    n = len(judge)
    if n == 0:
        return None
    observed = sum(1 for a, b in zip(judge, human, strict=True) if a == b) / n
    a_counts, b_counts = Counter(judge), Counter(human)
    expected = sum(a_counts[k] * b_counts.get(k, 0) for k in a_counts) / (n * n)
    if expected == 1.0:
        return None
    return (observed - expected) / (1 - expected)


def categorical_agreement(
    judge: Sequence[object], human: Sequence[object]
) -> dict[str, float | None]:
    n = len(judge)
    accuracy = sum(1 for a, b in zip(judge, human, strict=True) if a == b) / n if n else None
    return {"accuracy": accuracy, "cohen_kappa": cohen_kappa(judge, human)}


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Pearson's correlation of the ranks; None when either side is constant (or n < 2)."""
    if len(a) < 2:
        return None
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va = sum((x - ma) ** 2 for x in ra)
    vb = sum((y - mb) ** 2 for y in rb)
    if va == 0 or vb == 0:
        return None
    return float(cov / (va * vb) ** 0.5)


def numeric_agreement(judge: Sequence[float], human: Sequence[float]) -> dict[str, float | None]:
    n = len(judge)
    mae = sum(abs(a - b) for a, b in zip(judge, human, strict=True)) / n if n else None
    return {"spearman": spearman(judge, human), "mae": mae}
