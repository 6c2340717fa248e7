"""Multivariate drift: tests over all columns at once, for shifts no single column shows.

Two tests, both on a bounded subsample (at most ``max_rows`` rows per side: the reference side
is the sketch's joint row sample, the current side a seeded sample of the window):

- ``mmd``: the unbiased squared maximum mean discrepancy with an RBF kernel, the bandwidth by
  the median heuristic on the pooled sample (Gretton et al. 2012), and a permutation p-value.
- ``classifier``: a domain classifier told to separate reference rows from current rows; its
  cross-fitted ROC AUC is the statistic (0.5: indistinguishable), with a one-sided p-value from
  the folds' Mann-Whitney z's that stays valid although the folds are dependent.

Both see the same encoding of the rows (``encode``): numeric columns standardized by the
reference's mean and standard deviation (a constant column is only centred), a missing value
replaced by the reference mean plus a 0/1 "missing" column when either side has one; categorical
columns one-hot over the reference's most frequent categories (``MAX_CATEGORIES``) plus one
"other" column, scaled by 1/sqrt(2) so that two different categories are one unit apart, as a
one-standard-deviation change of a numeric column is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

    from ..sketch import ReferenceSketch
    from ._base import CurrentTable, Score

    Matrix = npt.NDArray[np.float64]

__all__ = [
    "MMD",
    "ClassifierOutcome",
    "ClassifierTest",
    "Encoding",
    "MMDOutcome",
    "classifier_auc",
    "encode",
    "mmd",
]

#: Categories of a categorical column given their own one-hot column (the rest share "other").
MAX_CATEGORIES = 20
#: Fewer rows than this on either side: no test is run (the result says so).
MIN_ROWS = 5
#: The classifier test needs this many rows a side per fold.
FOLD_ROWS = 10


@dataclass(frozen=True)
class Encoding:
    """Both sides' rows as numbers on one scale, and which columns made them."""

    reference: Matrix
    current: Matrix
    columns: tuple[str, ...]
    #: Columns the reference sketch lacks, or of a type no encoding reads (lists, structs).
    left_out: tuple[str, ...]


def _floats(values: pa.ChunkedArray) -> Matrix:
    import numpy as np

    from ._base import numeric_chunks

    chunks = numeric_chunks(values)
    out = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.float64)
    out = out.astype(np.float64, copy=True)
    out[~np.isfinite(out)] = np.nan  # infinities count as missing: they have no distance
    return out


def _labels(values: pa.ChunkedArray) -> list[str | None]:
    from ._base import category_labels

    return [None if v is None else str(v) for v in category_labels(values).to_pylist()]


def encode(
    ref: ReferenceSketch,
    current: pa.Table,
    columns: Sequence[str] = (),
    *,
    sample: pa.Table | None = None,
) -> Encoding:
    """Encode ``ref.sample`` (or ``sample``, rows of it) and ``current`` on the columns both
    have (or ``columns``), as the module doc says. Means, standard deviations and the top
    categories come from the sketch (exact over all reference rows). A column numeric on one
    side and text on the other is one-hot encoded on both (the numbers as their text), so a type
    change shows as drift instead of dropping the column.
    """
    import numpy as np

    from ._base import column_kind

    sample = ref.sample if sample is None else sample
    wanted = list(columns) or [c for c in current.column_names if c in ref.columns]
    parts_ref: list[Matrix] = []
    parts_cur: list[Matrix] = []
    used: list[str] = []
    left_out: list[str] = []
    for name in wanted:
        sketch = ref.columns.get(name)
        if sketch is None or name not in current.column_names or name not in sample.column_names:
            left_out.append(name)
            continue
        rvalues, cvalues = sample.column(name), current.column(name)
        kinds = (column_kind(rvalues.type), column_kind(cvalues.type))
        if None in kinds:
            left_out.append(name)
            continue
        if kinds == ("numeric", "numeric") and sketch.kind == "numeric":
            r, c = _floats(rvalues), _floats(cvalues)
            mean, std = sketch.mean, sketch.std
            if not (math.isfinite(mean) and math.isfinite(std)):
                mean, std = 0.0, 0.0
            scale = std if std > 0 else 1.0  # a constant column: centred, any change is drift
            r_missing, c_missing = np.isnan(r), np.isnan(c)
            parts_ref.append(np.nan_to_num((r - mean) / scale, nan=0.0)[:, None])
            parts_cur.append(np.nan_to_num((c - mean) / scale, nan=0.0)[:, None])
            if r_missing.any() or c_missing.any():
                parts_ref.append(r_missing.astype(np.float64)[:, None])
                parts_cur.append(c_missing.astype(np.float64)[:, None])
        else:
            r_labels, c_labels = _labels(rvalues), _labels(cvalues)
            if sketch.kind == "categorical" and kinds[0] == "categorical":
                top: list[str | None] = list(sketch.categories[:MAX_CATEGORIES])
            else:
                counts: dict[str, int] = {}
                for v in r_labels:
                    if v is not None:
                        counts[v] = counts.get(v, 0) + 1
                top = [*sorted(counts, key=lambda k: (-counts[k], k))[:MAX_CATEGORIES]]
            index = {v: i for i, v in enumerate([*top, None])}  # missing: a category of its own
            other = len(index)
            for labels, parts in ((r_labels, parts_ref), (c_labels, parts_cur)):
                onehot = np.zeros((len(labels), other + 1))
                cells = [index.get(v, other) for v in labels]
                onehot[np.arange(len(labels)), cells] = math.sqrt(0.5)
                parts.append(onehot)
        used.append(name)
    if not used:
        return Encoding(
            np.zeros((sample.num_rows, 0)), np.zeros((current.num_rows, 0)), (), tuple(left_out)
        )
    return Encoding(np.hstack(parts_ref), np.hstack(parts_cur), tuple(used), tuple(left_out))


@dataclass(frozen=True)
class MMDOutcome:
    """``mmd2``: the unbiased squared MMD; ``p_value``: its permutation p-value."""

    mmd2: float
    p_value: float
    bandwidth: float
    permutations: int


def mmd(x: Matrix, y: Matrix, *, permutations: int = 200, seed: int = 0) -> MMDOutcome:
    """Squared MMD between the rows of ``x`` and ``y`` with an RBF kernel and its p-value.

    k(a, b) = exp(-|a - b|^2 / (2 sigma^2)) with sigma^2 = median{|z_i - z_j|^2, i < j} / 2 over
    the pooled rows (the median of the positive distances when over half are 0). The bandwidth
    comes from the pooled sample, which every relabelling shares, so the permutation test stays
    exact. The kernel matrix is built once; each permutation is a column of a 0/1 label matrix and
    all of them are scored by one matrix product. p = (1 + #{perm >= observed}) / (1 + B), the
    permutation p-value that is never 0 (alibi-detect's mean(observed <= perm) can be).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> out = mmd(rng.normal(size=(200, 2)), rng.normal(1.0, size=(200, 2)))
        >>> out.p_value < 0.05
        True
    """
    import numpy as np

    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"mmd needs at least 2 rows per side, got {n} and {m}")
    z = np.vstack([x, y]).astype(np.float64, copy=False)
    total = n + m
    norms = np.einsum("ij,ij->i", z, z)
    dist = norms[:, None] + norms[None, :] - 2.0 * (z @ z.T)
    np.maximum(dist, 0.0, out=dist)
    pairs = dist[np.triu_indices(total, 1)]
    median = float(np.median(pairs))
    if median <= 0.0:
        positive = pairs[pairs > 0.0]
        if positive.size == 0:  # every row equal to every other: nothing to tell apart
            return MMDOutcome(0.0, 1.0, 0.0, permutations)
        median = float(np.median(positive))
    kernel = np.exp(dist * (-1.0 / median), out=dist)  # 2 sigma^2 = median
    np.fill_diagonal(kernel, 0.0)
    labels = np.zeros(total)
    labels[:n] = 1.0
    rng = np.random.default_rng(seed)
    assign = np.empty((total, permutations + 1))
    assign[:, 0] = labels
    assign[:, 1:] = rng.permuted(np.broadcast_to(labels[:, None], (total, permutations)), axis=0)
    # With s the 0/1 "reference" labels: s'Ks (ref-ref), s'K1 - s'Ks (ref-cur) and
    # 1'K1 - 2 s'K1 + s'Ks (cur-cur), for every column s at once.
    ks = kernel @ assign
    within = np.einsum("ij,ij->j", assign, ks)
    row_sums = kernel.sum(axis=1)
    towards_all = assign.T @ row_sums
    grand = float(row_sums.sum())
    values = (
        within / (n * (n - 1))
        + (grand - 2.0 * towards_all + within) / (m * (m - 1))
        - 2.0 * (towards_all - within) / (n * m)
    )
    exceed = int(np.count_nonzero(values[1:] >= values[0]))
    return MMDOutcome(
        float(values[0]), (1 + exceed) / (1 + permutations), math.sqrt(median / 2), permutations
    )


@dataclass(frozen=True)
class ClassifierOutcome:
    """Cross-validated ROC AUC of reference-vs-current, its p-value and the model used."""

    auc: float
    p_value: float
    model: str
    folds: int


def _auc(scores: Matrix, labels: Matrix) -> float:
    """ROC AUC by the Mann-Whitney U (ties count half), labels 1 = current."""
    import numpy as np

    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    pos = labels == 1.0
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    u = float(ranks[pos].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def _folds(labels: Matrix, k: int, rng: np.random.Generator) -> list[Any]:
    """Stratified fold indices: each class shuffled and dealt round-robin into ``k`` folds."""
    import numpy as np

    fold_of = np.empty(len(labels), dtype=np.int64)
    for value in (0.0, 1.0):
        idx = np.flatnonzero(labels == value)
        fold_of[rng.permutation(idx)] = np.arange(len(idx)) % k
    return [np.flatnonzero(fold_of == f) for f in range(k)]


def _quadratic(x: Matrix, max_inputs: int = 20) -> Matrix:
    """x, its squares and (for up to ``max_inputs`` columns) pairwise products: the features that
    let a linear model see a changed variance or correlation."""
    import numpy as np

    parts = [x, x * x]
    d = min(x.shape[1], max_inputs)
    if d >= 2:
        i, j = np.triu_indices(d, 1)
        parts.append(x[:, i] * x[:, j])
    return np.hstack(parts)


def _logistic_fit(x: Matrix, y: Matrix, l2: float = 30.0, steps: int = 25) -> Matrix:
    """L2-penalised logistic regression by Newton's method (intercept unpenalised).

    The penalty is on standardized features, of which the quadratic expansion makes hundreds
    on a wide table; measured here, 30 rather than 1 raised the AUC on a 0.5-sd shift of one
    column out of 25 from 0.559 to 0.564 and left a correlation flip's unchanged."""
    import numpy as np

    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    penalty = np.full(xb.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (p - y) + penalty * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.max(np.abs(step))) < 1e-6:
            break
    return w


def _sklearn_model(seed: int) -> Any | None:
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
    except ImportError:  # the sklearn extra is optional: the NumPy model takes over
        return None
    return HistGradientBoostingClassifier(
        max_iter=50, max_depth=3, learning_rate=0.1, early_stopping=False, random_state=seed
    )


def classifier_auc(
    x: Matrix, y: Matrix, *, folds: int = 2, seed: int = 0, backend: str = "auto"
) -> ClassifierOutcome:
    """Cross-fitted AUC of a classifier telling rows of ``y`` (current) from rows of ``x``.

    ``backend``: ``"sklearn"`` (gradient-boosted trees, 50 shallow trees: they see interactions
    and thresholds), ``"numpy"`` (logistic regression on the columns, their squares and pairwise
    products) or ``"auto"`` (sklearn when importable). The rows are dealt into ``folds``
    stratified folds; each fold is scored by a model fitted on the others, and the statistic is
    the mean of the folds' AUCs.

    The p-value is one-sided (AUC > 0.5): each fold's AUC is a Mann-Whitney statistic on rows its
    model never saw, so its normal-approximation z is exact enough under no drift; the folds'
    z's are dependent (their models share rows), and the p-value is that of their mean read as a
    standard normal, which is valid under any dependence (the mean of unit-variance z's has
    variance <= 1). Pooling all out-of-fold scores into one AUC is not: measured here, its
    no-drift spread was 1.3-1.4x the Mann-Whitney one, ~9 % false alarms at alpha 0.05. Two
    folds (the default) keep the most rows per fold for that test: at five, the mean of the
    fold z's rejected a 0.15-sd shift at 1000 rows a side 8 % of the time against 45 % at two.
    """
    import numpy as np

    n, m = len(x), len(y)
    if folds < 2 or n < 2 * folds or m < 2 * folds:
        raise ValueError(
            f"classifier needs folds >= 2 and 2 rows per fold a side, got folds={folds}, "
            f"{n} and {m} rows"
        )
    rows = np.vstack([x, y]).astype(np.float64, copy=False)
    labels = np.r_[np.zeros(n), np.ones(m)]
    rng = np.random.default_rng(seed)
    model = _sklearn_model(seed) if backend in ("auto", "sklearn") else None
    if backend == "sklearn" and model is None:
        raise ImportError(
            "classifier backend 'sklearn' needs scikit-learn: pip install 'loopwright[sklearn]'"
        )
    features = rows if model is not None else _quadratic(rows)
    aucs: list[float] = []
    zs: list[float] = []
    for test_idx in _folds(labels, folds, rng):
        train = np.ones(len(rows), dtype=bool)
        train[test_idx] = False
        if model is not None:
            from threadpoolctl import threadpool_limits

            # One OpenMP thread: on a loaded machine (or beside the drift pass's own thread
            # pool) the trees' OpenMP threads spin against each other; measured here, 1000 rows
            # a side took 0.1 s on one thread and 0.5-20 s on the default count.
            with threadpool_limits(limits=1, user_api="openmp"):
                fitted = model.fit(features[train], labels[train])
                scores = fitted.predict_proba(features[test_idx])[:, 1]
        else:
            mu = features[train].mean(axis=0)
            sd = features[train].std(axis=0)
            sd[sd == 0] = 1.0
            w = _logistic_fit((features[train] - mu) / sd, labels[train])
            scores = w[0] + ((features[test_idx] - mu) / sd) @ w[1:]
        fold_labels = labels[test_idx]
        cur_n = int(fold_labels.sum())
        ref_n = len(test_idx) - cur_n
        auc = _auc(scores, fold_labels)
        aucs.append(auc)
        zs.append((auc - 0.5) / math.sqrt((ref_n + cur_n + 1) / (12.0 * ref_n * cur_n)))
    z = sum(zs) / len(zs)
    p_value = 0.5 * math.erfc(z / math.sqrt(2.0))
    kind = "gradient_boosting" if model is not None else "logistic_quadratic"
    return ClassifierOutcome(sum(aucs) / len(aucs), p_value, kind, folds)


def _rows(
    ref: ReferenceSketch, cur: CurrentTable, max_rows: int, seed: int, min_rows: int = MIN_ROWS
) -> Encoding | str:
    """The encoded, subsampled rows of both sides, or why the test cannot run."""
    import numpy as np

    names = [n for n in cur.columns if n in ref.columns]
    sample, window = (
        ref.sample.select([n for n in names if n in ref.sample.column_names]),
        cur.table,
    )
    if sample.num_rows < min_rows or window.num_rows < min_rows:
        return (
            f"needs at least {min_rows} rows a side; the reference sample has {sample.num_rows}, "
            f"the current window {window.num_rows}"
        )
    rng = np.random.default_rng(seed)
    # Subsample before encoding: a 1M-row window is encoded only on the rows the test reads.
    if sample.num_rows > max_rows:
        sample = sample.take(np.sort(rng.choice(sample.num_rows, size=max_rows, replace=False)))
    if window.num_rows > max_rows:
        window = window.take(np.sort(rng.choice(window.num_rows, size=max_rows, replace=False)))
    enc = encode(ref, window, names, sample=sample)
    if not enc.columns:
        return "no column present on both sides has a type the test reads"
    return enc


def _facts(enc: Encoding) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "rows": [len(enc.reference), len(enc.current)],
        "columns": len(enc.columns),
    }
    if enc.left_out:
        facts["left_out"] = list(enc.left_out[:20])
    return facts


class MMD:
    """Squared MMD (RBF kernel, median heuristic) over all columns, with a permutation p-value.

    The statistic is the unbiased MMD^2 on at most ``max_rows`` rows a side. The default
    threshold, 0.002, sits above the no-drift spread at 1000 rows a side (about 0.0005) and
    below what a 0.5-sd shift of one column out of 25 gives (about 0.003); with the permutation
    test's p-value (``compare``'s rule) small windows stay calibrated. MMD^2 shrinks as columns
    are added (the median heuristic widens the kernel), so wide tables need a lower threshold.
    Cost: O(rows^2) memory and time: 0.3 s at 1000 rows a side and 25 columns (measured on this
    shared machine, a 1M-row window; the subsample is drawn before encoding).
    """

    name: ClassVar[str] = "mmd"
    kind: ClassVar[Literal["multivariate", "quality"]] = "multivariate"
    default_threshold: ClassVar[float] = 0.002
    higher_is_drift: ClassVar[bool] = True
    table: ClassVar[Literal[True]] = True

    def __init__(self, *, max_rows: int = 1000, permutations: int = 200, seed: int = 0) -> None:
        if max_rows < MIN_ROWS or permutations < 1:
            raise ValueError(
                f"mmd: max_rows must be >= {MIN_ROWS} and permutations >= 1, "
                f"got {max_rows} and {permutations}"
            )
        self.max_rows, self.permutations, self.seed = max_rows, permutations, seed

    def score(self, ref: ReferenceSketch, cur: CurrentTable) -> Score:
        from ._base import Score

        enc = _rows(ref, cur, self.max_rows, self.seed)
        if isinstance(enc, str):
            return Score.skip(enc)
        out = mmd(enc.reference, enc.current, permutations=self.permutations, seed=self.seed)
        detail = {**_facts(enc), "bandwidth": out.bandwidth, "permutations": out.permutations}
        return Score(out.mmd2, out.p_value, detail)


class ClassifierTest:
    """Domain-classifier two-sample test: cross-validated ROC AUC of reference vs current rows.

    0.5 means the classifier cannot tell the windows apart; the default threshold 0.55 is
    NannyML's and Evidently's. The p-value (one-sided, AUC > 0.5) keeps small windows
    calibrated: at 100 rows a side a fold's no-drift AUC standard error is about 0.06, so 0.55
    alone would false-alarm often. Gradient-boosted trees when scikit-learn is installed
    (``loopwright[sklearn]``), else a NumPy logistic regression on the columns, their squares
    and pairwise products; ``detail["model"]`` says which ran.
    """

    name: ClassVar[str] = "classifier"
    kind: ClassVar[Literal["multivariate", "quality"]] = "multivariate"
    default_threshold: ClassVar[float] = 0.55
    higher_is_drift: ClassVar[bool] = True
    table: ClassVar[Literal[True]] = True

    def __init__(
        self, *, max_rows: int = 1000, folds: int = 2, seed: int = 0, backend: str = "auto"
    ) -> None:
        if max_rows < FOLD_ROWS * folds or folds < 2 or backend not in ("auto", "sklearn", "numpy"):
            raise ValueError(
                f"classifier: folds must be >= 2, max_rows >= {FOLD_ROWS} x folds and backend "
                f"one of auto, sklearn, numpy; got {folds}, {max_rows}, {backend!r}"
            )
        self.max_rows, self.folds, self.seed, self.backend = max_rows, folds, seed, backend

    def score(self, ref: ReferenceSketch, cur: CurrentTable) -> Score:
        from ._base import Score

        # Each fold's Mann-Whitney z needs some rows of each side to be near normal.
        enc = _rows(ref, cur, self.max_rows, self.seed, FOLD_ROWS * self.folds)
        if isinstance(enc, str):
            return Score.skip(enc)
        out = classifier_auc(
            enc.reference, enc.current, folds=self.folds, seed=self.seed, backend=self.backend
        )
        return Score(out.auc, out.p_value, {**_facts(enc), "model": out.model, "folds": out.folds})
