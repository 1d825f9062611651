"""The measured pass size of SmoothGrad / integrated gradients."""

import numpy as np

import saliency_widgets as sw
from saliency_widgets.passes import MAX_GROWTH, PassSizes
from tests.models import torch_cnn


def run(sizes: PassSizes, total: int, seconds_for) -> list[int]:
    taken, left = [], total
    while left:
        n = sizes.next(left)
        sizes.record(seconds_for(n))
        taken.append(n)
        left -= n
    return taken


def test_grows_while_time_per_copy_drops_then_keeps_the_best():
    sizes = PassSizes(2)
    # fixed overhead of 1 s per pass plus 0.1 s per copy: bigger is better until the cap
    taken = run(sizes, 200, lambda n: 1 + 0.1 * n)
    assert taken[:4] == [2, 4, 8, 16] and sizes.settled and sizes.size == 2 * MAX_GROWTH


def test_stops_growing_when_bigger_passes_are_slower_per_copy():
    sizes = PassSizes(4)
    taken = run(sizes, 64, lambda n: 0.1 * n if n <= 8 else 0.3 * n)
    assert taken[:3] == [4, 8, 16]  # three sizes are always tried
    assert sizes.settled and sizes.size == 4 and sizes.rates == {4: 0.1, 8: 0.1, 16: 0.3}
    assert run(sizes, 20, lambda n: 1.0) == [4] * 5


def test_one_noisy_timing_does_not_stop_the_search():
    sizes = PassSizes(1)
    timings = iter([0.5, 1.2, 1.6, 2.4, 6.0])  # 1 copy looks fast once; 8 per pass is best per copy
    run(sizes, 31, lambda n: next(timings))
    assert sizes.settled and sizes.size == 8


def test_a_pass_cut_short_by_the_end_is_not_judged():
    sizes = PassSizes(8)
    assert run(sizes, 5, lambda n: 100.0) == [5]
    assert not sizes.settled and sizes.size == 8


def test_measured_passes_give_the_same_integrated_gradients(rng):
    model, x = torch_cnn(), rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    first = sw.attribute(model, x, 1, method="integrated_gradients", steps=40)
    again = sw.attribute(model, x, 1, method="integrated_gradients", steps=40)  # other pass sizes by now
    np.testing.assert_allclose(again.values, first.values, rtol=1e-5, atol=1e-7)
    assert np.all(np.abs(first.completeness_error) < 1e-3)

