"""``live.quantile`` at the edges: the lowest quantile, and ones outside [0, 1]."""

from __future__ import annotations

import pytest

from loopwright.serving.live import quantile

INF = float("inf")


def test_the_zero_quantile_is_the_lower_bound_of_the_first_bucket_holding_anything() -> None:
    # It divided by the empty first bucket's zero count.
    assert quantile(0.0, [(1.0, 0.0), (2.0, 10.0), (INF, 10.0)]) == 1.0
    assert quantile(0.0, [(1.0, 4.0), (INF, 4.0)]) == 0.0
    assert quantile(1.0, [(1.0, 0.0), (2.0, 10.0), (INF, 10.0)]) == 2.0


@pytest.mark.parametrize("q", [-0.1, 1.5, 50.0, float("nan")])
def test_a_quantile_outside_zero_to_one_is_refused_naming_it(q: float) -> None:
    # 1.5 answered inf, -0.1 the first bucket's lower bound: numbers that meant nothing.
    with pytest.raises(ValueError, match=r"within \[0, 1\], got"):
        quantile(q, [(1.0, 0.0), (2.0, 10.0), (INF, 10.0)])
