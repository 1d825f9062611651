"""The measured pass size of SmoothGrad / integrated gradients."""

import numpy as np

import saliency_widgets as sw
from saliency_widgets.passes import MAX_GROWTH, PassSizes
from tests.models import torch_cnn


def run(sizes: PassSizes, total: int, seconds_for) -> list[int]:
    """One call of ``total`` copies; ``seconds_for(n)`` (or ``seconds_for(n, layout)``) times a pass."""
    taken, left = [], total
    while left:
        n = sizes.next(left)
        sizes.record(seconds_for(n) if seconds_for.__code__.co_argcount == 1 else seconds_for(n, sizes.layout_for(n)))
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
    sizes = PassSizes(4)
    assert run(sizes, 6, lambda n: 100.0) == [4, 2]
    assert sizes.rates == {4: 25.0} and not sizes.settled and sizes.size == 6  # 8 would pass the call


def test_no_size_is_bigger_than_the_largest_call():
    sizes = PassSizes(8)  # the budget allows more than the calls ask for
    assert run(sizes, 5, lambda n: 1 + 0.1 * n) == [5]
    assert sizes.rates == {5: 0.3}


def until_done(sizes: PassSizes, total: int, seconds_for, calls: int = 40) -> int:
    """Calls of ``total`` copies until the choice is made; how many it took."""
    for call in range(1, calls + 1):
        run(sizes, total, seconds_for)
        if sizes.done:
            return call
    raise AssertionError(f"not settled after {calls} calls: {sizes}")


def test_growth_stops_at_the_largest_call_and_goes_on_for_a_bigger_one():
    sizes = PassSizes(1)
    overhead = lambda n: 1 + 0.1 * n  # noqa: E731 - bigger passes are cheaper per copy
    assert run(sizes, 7, overhead) == [1, 2, 4]  # growing; 8 would pass a 7-copy call
    assert run(sizes, 7, overhead) == [7] and sizes.settled and sizes.size == 7  # the whole call
    assert run(sizes, 56, overhead) == [14, 28, 14]  # a bigger call: the search goes on, up to the cap
    assert run(sizes, 56, overhead) == [32, 24]
    assert sizes.settled and sizes.size == 32 and sizes.done  # one layout: the search's choice stands


def test_a_search_stopped_by_its_timings_does_not_start_again():
    sizes = PassSizes(2)
    run(sizes, 14, lambda n: 0.1 * n if n <= 4 else 0.3 * n)  # 2, 4, 8: 8 is slower per copy
    assert sizes.settled and sizes.size == 2
    assert run(sizes, 40, lambda n: 0.1 * n) == [2] * 20


def test_other_layouts_are_tried_after_the_size_and_the_faster_kept():
    sizes = PassSizes(4, layouts=(None, "channels_last"))
    warmed = []

    def seconds(n, layout):
        if layout == "channels_last" and n not in warmed:
            warmed.append(n)
            return 10.0 * n  # the first pass in a new layout builds its kernels: not judged
        if layout == "channels_last":
            return (0.05 if n == 4 else 0.08) * n
        return (0.1 if n == 4 else 0.12) * n

    run(sizes, 4 + 8 + 16, seconds)  # sizes 4, 8, 16 in the default layout: 4 is the fastest
    assert sizes.settled and sizes.size == 4 and sizes.layout is None and not sizes.done
    assert run(sizes, 8, seconds) == [4, 4]  # the default ran at 4 already: judged at once, twice
    assert sizes.layout == "channels_last" and not sizes.done
    assert run(sizes, 12, seconds) == [4, 4, 4]  # warm-up, then two judged passes
    assert sizes.by_size[4].rates == {None: 0.1, "channels_last": 0.05}
    assert sizes.size == 2 and not sizes.done  # the climb measures the sizes beside the best
    until_done(sizes, 28, seconds)
    assert sizes.size == 4 and sizes.layout == "channels_last"
    # the default layout, twice as slow at the settled size, is not measured at the sizes beside it
    assert sizes.by_size[2].rates == sizes.by_size[8].rates == {"channels_last": 0.08}


def test_a_slower_layout_is_dropped():
    sizes = PassSizes(4, layouts=(None, "channels_last"))
    until_done(sizes, 28, lambda n, layout: (0.3 if layout else 0.1) * n)
    assert sizes.size == 4 and sizes.layout is None
    assert run(sizes, 8, lambda n, layout: 0.1 * n) == [4, 4]


def test_the_climb_finds_the_size_where_another_layout_is_fastest():
    """The zoo's small CNN: in the default layout sizes barely differ and the search settles at
    16; channels-last is twice as fast at 8 copies. The climb from (16, channels-last) finds it."""
    sizes = PassSizes(2, layouts=(None, "channels_last"))
    per_copy = {None: {2: 0.12, 4: 0.09, 8: 0.08, 16: 0.075, 32: 0.09},
                "channels_last": {2: 0.06, 4: 0.042, 8: 0.04, 16: 0.07, 32: 0.09}}
    seconds = lambda n, layout: per_copy[layout].get(n, 0.2) * n  # noqa: E731 - remainders: slow
    run(sizes, 64, seconds)
    assert sizes.settled and sizes.size == 16
    until_done(sizes, 64, seconds)
    assert sizes.size == 8 and sizes.layout == "channels_last"
    assert 4 in sizes.by_size and 32 not in sizes.by_size  # measured beside 8; 16's other side was not


def test_calls_smaller_than_the_first_size_settle_at_the_whole_call_then_climb():
    """The budget allows 32 copies but every call asks for 16: the search tries the whole call and
    settles there (it no longer waits for a 32-copy call that never comes); each layout is measured
    there, and the climb goes below it."""
    sizes = PassSizes(32, layouts=(None, "channels_last"))
    per_copy = {16: {None: 0.2, "channels_last": 0.1}, 8: {None: 0.2, "channels_last": 0.05}}
    until_done(sizes, 16, lambda n, layout: per_copy.get(n, {None: 0.3, "channels_last": 0.3})[layout] * n)
    assert sizes.settled_size == 16 and sizes.by_size[16].rates == {None: 0.2, "channels_last": 0.1}
    assert sizes.size == 8 and sizes.layout == "channels_last"


def test_measured_passes_give_the_same_integrated_gradients(rng):
    model, x = torch_cnn(), rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    first = sw.attribute(model, x, 1, method="integrated_gradients", steps=40)
    again = sw.attribute(model, x, 1, method="integrated_gradients", steps=40)  # other pass sizes by now
    np.testing.assert_allclose(again.values, first.values, rtol=1e-5, atol=1e-7)
    assert np.all(np.abs(first.completeness_error) < 1e-3)



def test_channels_last_passes_give_the_same_numbers(rng, monkeypatch):
    """A small memory budget makes one call try pass sizes in channels-last and then the
    contiguous layout; the map matches the one computed before any choice was made."""
    model, x = torch_cnn(), rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    reference = sw.attribute(model, x, 1, method="integrated_gradients", steps=64)
    monkeypatch.setattr(sw.config, "chunk_budget_bytes", 2 * x.nbytes * 32)
    backend = sw.attribution.get_backend(model)
    backend.pass_sizes.clear()
    for _ in range(12):
        got = sw.attribute(model, x, 1, method="integrated_gradients", steps=64)
        np.testing.assert_allclose(got.values, reference.values, rtol=1e-5, atol=1e-7)
        (sizes,) = backend.pass_sizes.values()
        if sizes.done:
            break
    # both layouts judged at the settled size; a neighbour the climb moved to measures only those within
    # LAYOUT_DROP_MARGIN there, which timing decides
    assert sizes.done and sizes.layouts == ("channels_last", None)
    assert set(sizes.by_size[sizes.settled_size].rates) == {"channels_last", None}


def test_the_climb_does_not_move_for_a_difference_within_timing_noise():
    sizes = PassSizes(8, layouts=(None, "channels_last"))
    run(sizes, 56, lambda n, layout: {8: 0.1, 16: 0.09, 32: 0.095}[n] * n)
    assert sizes.settled and sizes.size == 16
    per_copy = {16: 0.09, 8: 0.085, 32: 0.095}  # 8 is faster, by less than the margin
    until_done(sizes, 56, lambda n, layout: per_copy.get(n, 0.2) * n)
    assert sizes.size == 16 and sizes.by_size[8].done and sizes.by_size[32].done
    assert 4 not in sizes.by_size  # beside 8 only, where the climb did not go


def test_the_climb_reaches_the_whole_call_when_doubling_would_pass_it():
    sizes = PassSizes(6, layouts=(None, "channels_last"))
    run(sizes, 6 + 12 + 24, lambda n, layout: {6: 0.1, 12: 0.09, 24: 0.095}[n] * n)  # settles at 12
    per_copy = {12: 0.09, 6: 0.1, 24: 0.08, 42: 0.05}
    until_done(sizes, 42, lambda n, layout: per_copy.get(n, 0.2) * n)
    assert sizes.size == 42 and sizes.layout is None  # 12 -> 24 -> 42 (48 would pass the call)
    assert run(sizes, 42, lambda n, layout: 1.0) == [42]


def test_a_second_model_of_the_same_architecture_starts_where_the_first_settled(rng, monkeypatch):
    """A fresh model of the same class and weight shapes skips the size search (its first call runs
    the settled passes); another architecture searches from the first size."""
    x = rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    monkeypatch.setattr(sw.config, "chunk_budget_bytes", x.nbytes * 32)  # the search starts at 1 copy
    first = torch_cnn(seed=0)
    sw.attribute(first, x, 1, method="integrated_gradients", steps=64)
    (settled,) = sw.attribution.get_backend(first).pass_sizes.values()
    assert settled.settled and 1 in settled.rates

    second = torch_cnn(seed=1)
    got = sw.attribute(second, x, 1, method="integrated_gradients", steps=64)
    (started,) = sw.attribution.get_backend(second).pass_sizes.values()
    assert started is not settled and started.settled_size == settled.settled_size
    assert started.rates == settled.rates  # nothing was searched again
    assert np.all(np.abs(got.completeness_error) < 1e-3)

    other = torch_cnn(seed=0, n_out=3)
    sw.attribute(other, x, 1, method="integrated_gradients", steps=64)
    (searched,) = sw.attribution.get_backend(other).pass_sizes.values()
    assert searched.rates.keys() != settled.rates.keys() or searched.rates != settled.rates
    assert 1 in searched.rates


def test_sizes_tied_within_timing_noise_keep_growing():
    """The search's single timings include each new shape's warm-up, which ties sizes: growth goes
    on while the newest size is within GROWTH_TIE of the fastest, and settles on the fastest."""
    sizes = PassSizes(2)
    per_copy = {2: 0.10, 4: 0.08, 8: 0.081, 16: 0.07, 32: 0.09}
    run(sizes, 62, lambda n: per_copy[n] * n)
    assert sizes.settled and sizes.size == 16 and set(sizes.rates) == {2, 4, 8, 16, 32}


def test_a_calls_last_shorter_pass_runs_in_the_fastest_layout_unmeasured():
    sizes = PassSizes(4, layouts=(None, "channels_last"))
    until_done(sizes, 28, lambda n, layout: (0.05 if layout else 0.1) * n)
    assert sizes.size == 4 and sizes.layout == "channels_last"
    measured = {n: dict(t.rates) for n, t in sizes.by_size.items()}
    assert run(sizes, 6, lambda n, layout: (0.05 if layout else 0.1) * n) == [4, 2]
    assert sizes.layout_for(2) == "channels_last"
    assert {n: dict(t.rates) for n, t in sizes.by_size.items()} == measured
