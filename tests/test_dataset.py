"""sw.attribute_dataset: batch-by-batch equality with sw.saliency, resuming (bit for bit), a full disk
and damaged files, bounded memory, bad data (whole arrays in a tuple), class means and their figure,
and the Ray engine against the local one."""

from __future__ import annotations

import json
import threading
import tracemalloc

import numpy as np
import pytest

import saliency_widgets as sw
from saliency_widgets import colors
from saliency_widgets.export import Scale
from saliency_widgets.inputs import infer_layout

torch = pytest.importorskip("torch")

from models import keras_mlp, torch_cnn, torch_mlp  # noqa: E402


def _data(rng, n=100, features=6, classes=4):
    x = rng.normal(size=(n, features)).astype(np.float32)
    return x, rng.integers(0, classes, n)


def _batches(x, y, size):
    return [(x[s:s + size], y[s:s + size]) for s in range(0, len(x), size)]


def _by_hand(model, x):
    """∂ logit[argmax] / ∂ x with torch.autograd.grad, written out."""
    xt = torch.tensor(x, requires_grad=True)
    out = model(xt)
    picked = out.gather(1, out.argmax(1, keepdim=True)).sum()
    return torch.autograd.grad(picked, xt)[0].numpy()


# ------------------------------------------------------------ same numbers
def test_array_data_equals_saliency_batch_by_batch(rng, tmp_path, capsys):
    model = torch_mlp()
    x, y = _data(rng)
    result = sw.attribute_dataset(model, x, labels=y, batch_size=32, path=tmp_path)
    assert result.complete and len(result) == 100
    bar = capsys.readouterr().err  # tqdm's progress bar, with throughput
    assert "100/100" in bar and "sample/s" in bar
    for start in range(0, 100, 32):
        xb = x[start:start + 32]
        expected = sw.attribute(model, xb)
        np.testing.assert_array_equal(result.values[start:start + 32], expected.values)
        np.testing.assert_array_equal(result.targets[start:start + 32], [t[0] for t in expected.targets])
    np.testing.assert_allclose(result.values, _by_hand(model, x), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        np.testing.assert_array_equal(result.predictions, model(torch.tensor(x)).argmax(1).numpy())
    np.testing.assert_array_equal(result.labels, y)
    assert isinstance(result.values, np.memmap)


def test_method_options_targets_and_integrated_gradients(rng, tmp_path):
    model = torch_mlp()
    x, y = _data(rng, n=40)
    smooth = sw.attribute_dataset(model, x, 2, method="smoothgrad", n_samples=4, seed=3, batch_size=16,
                                  path=tmp_path / "sg", progress=False)
    for start in range(0, 40, 16):
        ref = sw.saliency(model, x[start:start + 16], 2, method="smoothgrad", n_samples=4, seed=3)
        np.testing.assert_array_equal(smooth.values[start:start + 16], ref)
    assert set(smooth.targets.tolist()) == {2}

    by_label = sw.attribute_dataset(model, x, "label", labels=y, batch_size=16, path=tmp_path / "lab", progress=False)
    np.testing.assert_array_equal(by_label.targets, y)
    per_sample = sw.attribute_dataset(model, x, list(y), batch_size=16, path=tmp_path / "per", progress=False)
    np.testing.assert_array_equal(per_sample.values, by_label.values)
    np.testing.assert_array_equal(per_sample.values[:16], sw.saliency(model, x[:16], list(y[:16])))

    ig = sw.attribute_dataset(model, x, method="integrated_gradients", steps=32, batch_size=16,
                              path=tmp_path / "ig", progress=False)
    with torch.no_grad():
        scores = model(torch.tensor(x)).numpy()
        zero = model(torch.zeros(1, 6)).numpy()[0]
    rows = np.arange(40)
    gap = scores[rows, ig.targets] - zero[ig.targets]
    np.testing.assert_allclose(ig.values.sum(axis=1), gap, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(ig.completeness_error, ig.values.sum(axis=1) - gap, atol=1e-4)


def test_torch_dataset_and_dataloader_give_the_array_results(rng, tmp_path):
    from torch.utils.data import DataLoader, TensorDataset

    model = torch_mlp()
    x, y = _data(rng, n=50)
    dataset = TensorDataset(torch.tensor(x), torch.tensor(y))
    reference = sw.attribute_dataset(model, x, labels=y, batch_size=16, path=tmp_path / "a", progress=False)
    from_dataset = sw.attribute_dataset(model, dataset, batch_size=16, path=tmp_path / "d", progress=False)
    from_loader = sw.attribute_dataset(model, DataLoader(dataset, batch_size=16), path=tmp_path / "l", progress=False)
    for result in (from_dataset, from_loader):
        np.testing.assert_array_equal(result.values, reference.values)
        np.testing.assert_array_equal(result.labels, y)


def test_keras_model_on_a_tf_data_dataset(rng, tmp_path):
    tf = pytest.importorskip("tensorflow")
    pytest.importorskip("keras")
    model = keras_mlp()
    x, y = _data(rng, n=40)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    result = sw.attribute_dataset(model, data, path=tmp_path, progress=False)
    assert len(result) == 40
    for start in range(0, 40, 16):
        xb = x[start:start + 16]
        # A call may run eagerly or traced (Keras traces in the background): equal to float32 rounding.
        direct = sw.saliency(model, xb)
        np.testing.assert_allclose(result.values[start:start + 16], direct, rtol=1e-5, atol=1e-6 * np.abs(direct).max())
        tape_x = tf.constant(xb)
        with tf.GradientTape() as tape:
            tape.watch(tape_x)
            out = model(tape_x, training=False)
            picked = tf.reduce_sum(tf.gather(out, tf.argmax(out, axis=1), batch_dims=1))
        np.testing.assert_allclose(result.values[start:start + 16], tape.gradient(picked, tape_x).numpy(),
                                   rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.labels, y)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["framework"] == "keras" and manifest["fingerprint"]["weights"]["tensors"] == 4
    with pytest.raises(sw.SaliencyError, match="model's weights"):  # model.weights, found by duck typing
        sw.attribute_dataset(keras_mlp(seed=1), data, path=tmp_path, progress=False)
    # The same weights in a rebuilt model (its layers get other generated names) open the run.
    assert sw.attribute_dataset(keras_mlp(), data, path=tmp_path, progress=False).complete


class _TwoInputs(torch.nn.Module):
    """model(a, b, mask): two attributed float inputs and an integer mask passed through."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = torch.nn.Linear(4, 3), torch.nn.Linear(2, 3)

    def forward(self, a, b, mask):
        return torch.tanh(self.a(a)) + self.b(b) * mask


def test_structured_x_as_a_dict_of_arrays_or_tuple_batches(rng, tmp_path):
    model = _TwoInputs().eval()
    a, b = rng.normal(size=(40, 4)).astype(np.float32), rng.normal(size=(40, 2)).astype(np.float32)
    mask, y = rng.integers(0, 2, (40, 1)), rng.integers(0, 3, 40)
    as_dict = sw.attribute_dataset(model, {"a": a, "b": b, "mask": mask}, labels=y, batch_size=16,
                                   path=tmp_path / "dict", progress=False)
    batches = [((a[s:s + 16], b[s:s + 16], mask[s:s + 16]), y[s:s + 16]) for s in range(0, 40, 16)]
    as_tuples = sw.attribute_dataset(model, batches, path=tmp_path / "tuples", progress=False)
    assert as_dict.values["mask"] is None and as_tuples.values[2] is None
    for start in range(0, 40, 16):
        rows = slice(start, start + 16)
        expected = sw.saliency(model, (a[rows], b[rows], mask[rows]))
        for key, position in (("a", 0), ("b", 1)):
            np.testing.assert_array_equal(as_dict.values[key][rows], expected[position])
            np.testing.assert_array_equal(as_tuples.values[position][rows], expected[position])
    means = as_dict.mean_by_class(entry="b")
    for c, mean in means.items():
        np.testing.assert_allclose(mean, np.asarray(as_dict.values["b"])[y == c].mean(axis=0), rtol=1e-5, atol=1e-7)
    with pytest.raises(sw.SaliencyError, match="attributed entries"):
        as_dict.mean_by_class(entry="mask")


# --------------------------------------------------------------- resuming
def test_interrupted_run_resumes_where_it_stopped(rng, tmp_path):
    model = torch_mlp()
    x, y = _data(rng, n=90)
    size, k = 16, 3

    def interrupted():
        for number, batch in enumerate(_batches(x, y, size)):
            if number == k:
                raise KeyboardInterrupt
            yield batch

    with pytest.raises(KeyboardInterrupt):
        sw.attribute_dataset(model, interrupted(), path=tmp_path / "run", progress=False)
    partial = sw.DatasetAttribution.load(tmp_path / "run")
    assert len(partial) == k * size and not partial.complete
    np.testing.assert_array_equal(partial.values, sw.saliency(model, x[:k * size]))
    with open(tmp_path / "run" / "values.npy", "ab") as f:  # killed while writing the next batch
        f.write(np.full(100, np.nan, np.float32).tobytes())

    seen: set[float] = set()
    hook = model.register_forward_pre_hook(lambda module, args: seen.update(args[0][:, 0].tolist()))
    try:
        resumed = sw.attribute_dataset(model, iter(_batches(x, y, size)), path=tmp_path / "run", progress=False)
        assert seen == set(x[k * size:, 0].tolist())  # the finished rows were not computed again
        seen.clear()
        again = sw.attribute_dataset(model, _batches(x, y, size), path=tmp_path / "run", progress=False)
        assert not seen  # complete: opened, nothing computed
    finally:
        hook.remove()
    whole = sw.attribute_dataset(model, _batches(x, y, size), path=tmp_path / "whole", progress=False)
    assert resumed.complete and len(resumed) == 90
    for result in (resumed, again):
        np.testing.assert_array_equal(result.values, whole.values)
        np.testing.assert_array_equal(result.targets, whole.targets)
        np.testing.assert_array_equal(result.labels, y)


# ------------------------------------------- resuming only the run that is there
def _files(path):
    return {f.name: f.read_bytes() for f in path.iterdir()}


def _run(model, x, y, path, **kw):
    return sw.attribute_dataset(model, x, labels=y, batch_size=16, path=path, progress=False, **kw)


def test_the_same_model_class_with_other_weights_is_refused(rng, tmp_path):
    x, y = _data(rng, n=40)
    _run(torch_mlp(seed=0), x, y, tmp_path)
    before = _files(tmp_path)
    with pytest.raises(sw.SaliencyError, match=r"another run \(the model's weights: .*overwrite=True") as err:
        _run(torch_mlp(seed=1), x, y, tmp_path)
    assert "sha256" in str(err.value)
    assert _files(tmp_path) == before

    cnn, images = torch_cnn(size=8), rng.normal(size=(8, 3, 8, 8)).astype(np.float32)
    sw.attribute_dataset(cnn, images, batch_size=4, path=tmp_path / "cnn", progress=False)
    with torch.no_grad():
        cnn[1].running_mean += 0.5  # a buffer, not a parameter: it changes the outputs all the same
    with pytest.raises(sw.SaliencyError, match="model's weights"):
        sw.attribute_dataset(cnn, images, batch_size=4, path=tmp_path / "cnn", progress=False)


def test_data_changed_after_the_first_batch_is_refused(rng, tmp_path):
    model = torch_mlp()
    x, y = _data(rng, n=64)

    def stops_after(batches, k):
        yield from batches[:k]
        raise RuntimeError("the data went away")

    with pytest.raises(RuntimeError):
        sw.attribute_dataset(model, stops_after(_batches(x, y, 16), 3), path=tmp_path / "part", progress=False)
    changed = x.copy()
    changed[20, 3] += 1.0  # batch 1
    before = _files(tmp_path / "part")
    with pytest.raises(sw.SaliencyError, match=r"batch 1 \(rows 16–31\).*overwrite=True"):
        sw.attribute_dataset(model, _batches(changed, y, 16), path=tmp_path / "part", progress=False)
    assert _files(tmp_path / "part") == before

    _run(model, x, y, tmp_path / "whole")  # complete: re-opening reads the data again too
    for data, labels, words in ((changed, y, "batch 1"), (x, np.roll(y, 1), "batch 0")):
        with pytest.raises(sw.SaliencyError, match=words):
            _run(model, data, labels, tmp_path / "whole")
    sw.attribute_dataset(model, _batches(x, y, 16), path=tmp_path / "batches", progress=False)
    longer = np.concatenate([x, x[:8]]), np.concatenate([y, y[:8]])
    for data, labels, words in ((x[:32], y[:32], "ends after 2 batches"), (*longer, "goes on after row 63")):
        with pytest.raises(sw.SaliencyError, match=words):
            sw.attribute_dataset(model, _batches(data, labels, 16), path=tmp_path / "batches", progress=False)


def test_rows_changed_on_disk_are_refused_as_damaged(rng, tmp_path):
    model = torch_mlp()
    x, y = _data(rng, n=40)
    _run(model, x, y, tmp_path)
    targets = np.load(tmp_path / "targets.npy", mmap_mode="r+")
    targets[16:32] = 0
    targets.flush()
    del targets
    before = _files(tmp_path)
    with pytest.raises(sw.SaliencyError, match=r"damaged.*rows 16–31 \(batch 1\) of targets.npy.*overwrite=True"):
        _run(model, x, y, tmp_path)
    assert _files(tmp_path) == before


def test_a_truncated_values_file_is_refused(rng, tmp_path):
    model = torch_mlp()
    x, y = _data(rng, n=40)

    def stops_after(k):
        yield from _batches(x, y, 16)[:k]
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError):
        sw.attribute_dataset(model, stops_after(2), path=tmp_path / "part", progress=False)
    sw.attribute_dataset(model, _batches(x, y, 16), path=tmp_path / "whole", progress=False)
    for folder in ("part", "whole"):
        values = tmp_path / folder / "values.npy"
        size = values.stat().st_size
        for keep in (size - 10, 200):  # rows cut off; the header cut
            with open(values, "r+b") as f:
                f.truncate(keep)
            with pytest.raises(sw.SaliencyError, match=r"damaged.*values\.npy.*overwrite=True"):
                sw.attribute_dataset(model, _batches(x, y, 16), path=tmp_path / folder, progress=False)
            assert values.stat().st_size == keep


def test_a_manifest_of_another_method_or_options_or_that_does_not_parse_is_refused(rng, tmp_path):
    model = torch_mlp()
    x, y = _data(rng, n=40)
    _run(model, x, y, tmp_path, method="smoothgrad", n_samples=3, seed=1)
    before = _files(tmp_path)
    others = (({"method": "gradient"}, "method"), ({"method": "smoothgrad", "n_samples": 4, "seed": 1}, "options"),
              ({"method": "smoothgrad", "n_samples": 3, "seed": 1, "output": "probabilities"}, "options"),
              ({"method": "smoothgrad", "n_samples": 3, "seed": 1, "target": 2}, "target"))
    for options, words in others:
        with pytest.raises(sw.SaliencyError, match=rf"another run \(.*{words}.*overwrite=True"):
            _run(model, x, y, tmp_path, **options)
    with pytest.raises(sw.SaliencyError, match="batch_size.*overwrite=True"):
        sw.attribute_dataset(model, x, labels=y, batch_size=8, path=tmp_path, progress=False,
                             method="smoothgrad", n_samples=3, seed=1)
    assert _files(tmp_path) == before

    (tmp_path / "manifest.json").write_text(before["manifest.json"].decode()[:-20])
    with pytest.raises(sw.SaliencyError, match="manifest.json cannot be read.*overwrite=True"):
        _run(model, x, y, tmp_path, method="smoothgrad", n_samples=3, seed=1)
    (tmp_path / "manifest.json").write_bytes(before["manifest.json"])
    lines = before["batches.jsonl"].split(b"\n")
    (tmp_path / "batches.jsonl").write_bytes(b"\n".join([lines[0], b'{"start": 16', *lines[2:]]))
    with pytest.raises(sw.SaliencyError, match="batches.jsonl line 2.*overwrite=True"):
        _run(model, x, y, tmp_path, method="smoothgrad", n_samples=3, seed=1)

    # A run of the first format (no weights, no journal) still loads, but does not resume.
    old = json.loads(before["manifest.json"])
    old.update(format="saliency_widgets.attribute_dataset/1")
    (tmp_path / "manifest.json").write_text(json.dumps(old))
    (tmp_path / "batches.jsonl").unlink()
    assert len(sw.DatasetAttribution.load(tmp_path)) == 40
    with pytest.raises(sw.SaliencyError, match="earlier version.*overwrite=True"):
        _run(model, x, y, tmp_path, method="smoothgrad", n_samples=3, seed=1)


def test_overwrite_replaces_the_run_that_is_there(rng, tmp_path):
    x, y = _data(rng, n=40)
    model = torch_mlp(seed=0)
    _run(torch_mlp(seed=1), x, y, tmp_path / "run", method="input_x_gradient")
    fresh = _run(model, x, y, tmp_path / "run", overwrite=True)
    new = _run(model, x, y, tmp_path / "new")
    assert fresh.complete and fresh.method == "gradient"
    assert _files(tmp_path / "run") == _files(tmp_path / "new")  # values, journal and manifest alike
    np.testing.assert_array_equal(fresh.values, new.values)

    (tmp_path / "run" / "manifest.json").write_text("{ not json")  # damaged files go too
    (tmp_path / "run" / "keep.txt").write_text("not ours")
    again = _run(model, x, y, tmp_path / "run", overwrite=True)
    np.testing.assert_array_equal(again.values, new.values)
    assert (tmp_path / "run" / "keep.txt").read_text() == "not ours"


def test_an_honest_interrupted_run_resumes_checked_and_gives_the_whole_run(rng, tmp_path):
    model = torch_mlp()
    x, y = _data(rng, n=70)

    def stops_after_two():
        yield from _batches(x, y, 16)[:2]
        raise RuntimeError("the data went away")

    with pytest.raises(RuntimeError, match="went away"):
        sw.attribute_dataset(model, stops_after_two(), path=tmp_path / "run", progress=False)
    journal = (tmp_path / "run" / "batches.jsonl").read_text().splitlines()
    assert [json.loads(line)["start"] for line in journal] == [0, 16]
    with open(tmp_path / "run" / "batches.jsonl", "a") as f:  # stopped while recording batch 2
        f.write('{"start":32,"rows":16,"inp')
    with open(tmp_path / "run" / "targets.npy", "ab") as f:  # ... after writing some of its rows
        f.write(np.arange(16, dtype=np.int64).tobytes())
    resumed = sw.attribute_dataset(model, _batches(x, y, 16), path=tmp_path / "run", progress=False)
    whole = sw.attribute_dataset(model, _batches(x, y, 16), path=tmp_path / "whole", progress=False)
    assert resumed.complete and len(resumed) == 70
    assert _files(tmp_path / "run") == _files(tmp_path / "whole")
    np.testing.assert_array_equal(resumed.values, whole.values)


def _interrupted_after(path, batches):
    """``path``'s complete run as a run stopped after ``batches`` batches leaves it: the manifest
    not complete, the journal's later lines gone, rows past them still in the columns."""
    manifest = json.loads((path / "manifest.json").read_text())
    manifest.update(complete=False, rows=0, batches=0)
    (path / "manifest.json").write_text(json.dumps(manifest))
    lines = (path / "batches.jsonl").read_text().splitlines(keepends=True)
    (path / "batches.jsonl").write_text("".join(lines[:batches]))


def test_a_resumed_run_is_bit_identical_to_the_uninterrupted_run(rng, tmp_path, monkeypatch):
    import copy
    import shutil

    model = torch_mlp()
    x, y = _data(rng, n=48)
    monkeypatch.setattr(sw.config, "chunk_budget_bytes", 32 * x[:8].nbytes)  # one copy per pass at first
    options = dict(method="integrated_gradients", steps=16, batch_size=8, progress=False)
    whole = sw.attribute_dataset(model, x, path=tmp_path / "whole", **options)
    shutil.copytree(tmp_path / "whole", tmp_path / "run")
    _interrupted_after(tmp_path / "run", 3)
    # A copy of the model has a fresh backend, as in a new process: its own pass search would split
    # the steps otherwise, and float32 sums of other passes differ in the last bits.
    resumed = sw.attribute_dataset(copy.deepcopy(model), x, path=tmp_path / "run", **options)
    assert resumed.complete
    np.testing.assert_array_equal(resumed.values, whole.values)
    assert _files(tmp_path / "run") == _files(tmp_path / "whole")
    # The search had chosen by then (one layout: its size settles within two calls), and the
    # rows from there on ran with its choice.
    plan = json.loads((tmp_path / "run" / "manifest.json").read_text())["passes"]
    assert 1 <= plan["size"] <= 16 and plan["layout"] is None and plan["from_row"] in (8, 16)
    with torch.no_grad():
        gap = (model(torch.tensor(x)) - model(torch.zeros(1, 6))).numpy()[np.arange(48), resumed.targets]
    np.testing.assert_allclose(resumed.values.sum(axis=1) - resumed.completeness_error, gap, rtol=1e-4, atol=1e-5)


def test_a_full_disk_stops_the_run_keeps_the_finished_batches_and_a_later_call_resumes(rng, tmp_path, monkeypatch):
    import errno

    from saliency_widgets.dataset.store import Column

    model = torch_mlp()
    x, y = _data(rng, n=64)
    append = Column.append

    def disk_fills_at_batch_two(column, values, rows_before):
        if column.path.name == "values.npy" and rows_before == 32:  # half the batch's rows reach the disk
            append(column, values[:8], rows_before)
            raise OSError(errno.ENOSPC, "No space left on device", str(column.path))
        append(column, values, rows_before)

    monkeypatch.setattr(Column, "append", disk_fills_at_batch_two)
    with pytest.raises(sw.SaliencyError, match=r"could not write .*values\.npy: No space left on device.*The 32 "
                                               r"rows finished before are kept.*free disk space, then call "
                                               r"attribute_dataset again.*to resume.*overwrite=True"):
        _run(model, x, y, tmp_path / "run")
    monkeypatch.setattr(Column, "append", append)
    partial = sw.DatasetAttribution.load(tmp_path / "run")
    assert len(partial) == 32 and not partial.complete
    np.testing.assert_allclose(partial.values, _by_hand(model, x[:32]), rtol=1e-5, atol=1e-6)
    resumed = _run(model, x, y, tmp_path / "run")
    whole = _run(model, x, y, tmp_path / "whole")
    assert resumed.complete and _files(tmp_path / "run") == _files(tmp_path / "whole")
    np.testing.assert_allclose(resumed.values, _by_hand(model, x), rtol=1e-5, atol=1e-6)

    create = Column.create

    def full_at_the_second_file(column):
        if column.path.name != "values.npy":
            raise OSError(errno.ENOSPC, "No space left on device", str(column.path))
        create(column)

    monkeypatch.setattr(Column, "create", full_at_the_second_file)
    with pytest.raises(sw.SaliencyError, match=r"could not write .*No space left on device.*Nothing had finished, "
                                               r"and no file of the run is left in .*free disk space"):
        _run(model, x, y, tmp_path / "first")
    assert list((tmp_path / "first").iterdir()) == []  # a later call starts cleanly
    monkeypatch.setattr(Column, "create", create)
    np.testing.assert_array_equal(_run(model, x, y, tmp_path / "first").values, whole.values)


def test_a_manifest_missing_keys_is_refused_naming_the_file(rng, tmp_path):
    model = torch_mlp()
    x, y = _data(rng, n=40)
    _run(model, x, y, tmp_path)
    good = json.loads((tmp_path / "manifest.json").read_text())
    for key in ("complete", "columns", "fingerprint", "output_shape"):
        (tmp_path / "manifest.json").write_text(json.dumps({k: v for k, v in good.items() if k != key}))
        before = _files(tmp_path)
        for call in (lambda: _run(model, x, y, tmp_path), lambda: sw.DatasetAttribution.load(tmp_path)):
            with pytest.raises(sw.SaliencyError, match=rf"damaged.*manifest\.json lacks '{key}'.*overwrite=True"):
                call()
        assert _files(tmp_path) == before
    (tmp_path / "manifest.json").write_text(json.dumps({**good, "complete": "yes"}))
    with pytest.raises(sw.SaliencyError, match=r"manifest\.json 'complete' is a str, not a bool"):
        sw.DatasetAttribution.load(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({**good, "passes": "fast"}))
    with pytest.raises(sw.SaliencyError, match=r"manifest\.json has passes 'fast'"):
        sw.DatasetAttribution.load(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps(good))
    assert _run(model, x, y, tmp_path).complete


def test_a_column_cut_short_after_its_finished_rows_loads_and_resumes(rng, tmp_path):
    import shutil

    model = torch_mlp()
    x, y = _data(rng, n=64)
    whole = _run(model, x, y, tmp_path / "whole")
    shutil.copytree(tmp_path / "whole", tmp_path / "run")
    _interrupted_after(tmp_path / "run", 2)
    # Killed while writing batch 2: its header counts 64 rows, but only 8 of batch 2's rows reached the disk.
    with open(tmp_path / "run" / "values.npy", "r+b") as f:
        f.truncate(256 + 40 * 6 * 4)
    partial = sw.DatasetAttribution.load(tmp_path / "run")
    np.testing.assert_array_equal(partial.values, whole.values[:32])
    resumed = _run(model, x, y, tmp_path / "run")
    assert _files(tmp_path / "run") == _files(tmp_path / "whole")
    np.testing.assert_allclose(resumed.values, _by_hand(model, x), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ memory
class _PeakRSS:
    """Largest resident set size of this process while the block runs, sampled every millisecond
    (it sees torch's buffers, which tracemalloc does not)."""

    def __enter__(self):
        import psutil

        self._process, self._stop, self.peak = psutil.Process(), threading.Event(), 0
        self.start = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth(self):
        return self.peak - self.start


def test_memory_stays_within_the_chunk_budget_plus_one_batch(rng, tmp_path, monkeypatch):
    monkeypatch.setattr(sw.config, "chunk_budget_bytes", 256 << 10)
    model = torch_cnn(size=32)
    size = 64
    x = rng.normal(size=(20 * size, 3, 32, 32)).astype(np.float32)
    one_batch = x[:size].nbytes  # 0.75 MiB
    sw.attribute_dataset(model, x[:size], batch_size=size, path=tmp_path / "warm", progress=False)  # first-call setup
    # Best of three: one-off jumps of 1-4 MB (allocator, threads) land at random in either run about
    # 1 time in 10, while memory that grows with the batches shows in every run.
    short_growth, long_growth = [], []
    for attempt in range(3):
        with _PeakRSS() as short:
            sw.attribute_dataset(model, x[:2 * size], batch_size=size, path=tmp_path / f"short{attempt}", progress=False)
        with _PeakRSS() as long:
            result = sw.attribute_dataset(model, x, batch_size=size, path=tmp_path / f"long{attempt}", progress=False)
        short_growth.append(short.growth)
        long_growth.append(long.growth)
    tracemalloc.start()
    try:
        sw.attribute_dataset(model, x, batch_size=size, path=tmp_path / "traced", progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    bound = sw.config.chunk_budget_bytes + 2 * one_batch  # the batch in, its attribution out
    assert result.values.nbytes == 20 * one_batch > 6 * bound
    assert peak <= bound, f"numpy/Python peak {peak:,} B above {bound:,} B"
    # The whole process (torch's buffers too, which tracemalloc does not see): 20 batches
    # need no more than 2 did; the model's activations for one batch come on top of the bound.
    assert min(long_growth) <= min(short_growth) + one_batch, \
        f"RSS grew {min(long_growth):,} B (2 batches: {min(short_growth):,} B)"


# ---------------------------------------------------------------- bad data
def test_a_batch_of_other_shape_or_structure_stops_the_run_and_keeps_what_finished(rng, tmp_path):
    model = torch_mlp()
    x, y = _data(rng, n=64)
    good = _batches(x, y, 16)
    wide = (rng.normal(size=(16, 7)).astype(np.float32), y[:16])
    for bad, words in ((wide, "shape (7,)"), ({"a": x[:16]}, "structure"), ((x[:16], y[:8]), "batch sizes")):
        path = tmp_path / words.replace(" ", "_")
        with pytest.raises(sw.SaliencyError, match="batch 2") as err:
            sw.attribute_dataset(model, [*good[:2], bad, *good[2:]], path=path, progress=False)
        assert words in str(err.value)
        kept = sw.DatasetAttribution.load(path)
        assert len(kept) == 32 and not kept.complete
        np.testing.assert_array_equal(kept.values, sw.saliency(model, x[:32]))


def test_whole_arrays_in_a_tuple_are_refused_naming_labels(rng, tmp_path):
    model = torch_mlp()
    x, y = _data(rng, n=40)
    two_inputs = (x[:, :4], x[:, 4:])
    for data in ((x, y), [x, y], (torch.tensor(x), torch.tensor(y)), ({"a": x}, y), two_inputs, (x[:20], x[20:])):
        with pytest.raises(sw.SaliencyError, match=r"two whole arrays.*pass labels=y, or an iterable of \(x, y\) "
                                                   r"batches.*two inputs of one model: pass a dict") as err:
            sw.attribute_dataset(model, data, path=tmp_path / "run", progress=False)
        assert "(40, 6)" in str(err.value) or "(20, 6)" in str(err.value) or "(40, 4)" in str(err.value)
    assert not (tmp_path / "run").exists()
    by_labels = sw.attribute_dataset(model, x, labels=y, batch_size=20, path=tmp_path / "labels", progress=False)
    two_batches = sw.attribute_dataset(model, [x[:20], x[20:]], path=tmp_path / "list", progress=False)
    np.testing.assert_array_equal(two_batches.values, by_labels.values)
    np.testing.assert_allclose(by_labels.values, _by_hand(model, x), rtol=1e-5, atol=1e-6)


def test_samples_that_cannot_be_stacked_are_refused(rng, tmp_path):
    model = torch_mlp()
    samples = [rng.normal(size=6).astype(np.float32) for _ in range(20)] + [np.zeros(5, np.float32)]

    class Samples:
        def __len__(self):
            return len(samples)

        def __getitem__(self, i):
            return samples[i]

    with pytest.raises(sw.SaliencyError, match="samples 16–20 cannot be stacked"):
        sw.attribute_dataset(model, Samples(), batch_size=8, path=tmp_path, progress=False)
    assert len(sw.DatasetAttribution.load(tmp_path)) == 16


def test_a_path_holding_another_run_is_refused_and_left_alone(rng, tmp_path):
    model = torch_mlp()
    x, y = _data(rng, n=40)
    sw.attribute_dataset(model, x, labels=y, batch_size=16, path=tmp_path, progress=False)
    before = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    others = ((x[::-1].copy(), y, {}), (x, y, {"method": "input_x_gradient"}), (x, y, {"target": 1}),
              (np.concatenate([x, x]), np.concatenate([y, y]), {}))
    for data, labels, options in others:
        with pytest.raises(sw.SaliencyError, match="another run"):
            sw.attribute_dataset(model, data, labels=labels, batch_size=16, path=tmp_path, progress=False, **options)
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == before

    foreign = tmp_path.parent / "foreign"
    foreign.mkdir()
    np.save(foreign / "values.npy", np.ones(3))
    with pytest.raises(sw.SaliencyError, match="values.npy"):
        sw.attribute_dataset(model, x, path=foreign, progress=False)
    np.testing.assert_array_equal(np.load(foreign / "values.npy"), np.ones(3))

    (tmp_path / "values.npy").unlink()
    with pytest.raises(sw.SaliencyError, match="is missing"):
        sw.attribute_dataset(model, x, labels=y, batch_size=16, path=tmp_path, progress=False)


def test_unknown_engine_and_bad_targets_are_refused(rng, tmp_path):
    model = torch_mlp()
    x, _ = _data(rng, n=8)
    with pytest.raises(sw.SaliencyError, match="engine"):
        sw.attribute_dataset(model, x, engine="spark", path=tmp_path)
    with pytest.raises(sw.SaliencyError, match="needs labels"):
        sw.attribute_dataset(model, x, "label", path=tmp_path / "a", progress=False)
    with pytest.raises(sw.SaliencyError, match="one per sample"):
        sw.attribute_dataset(model, x, [0, 1], batch_size=4, path=tmp_path / "b", progress=False)


# ------------------------------------------------------- class means, figure
def test_mean_by_class_and_its_figure(rng, tmp_path, monkeypatch):
    model = torch_mlp()
    x, y = _data(rng, n=120)
    monkeypatch.setattr(sw.config, "chunk_budget_bytes", 256)  # several chunks per class
    result = sw.attribute_dataset(model, x, labels=y, batch_size=32, path=tmp_path, progress=False)
    values = np.load(tmp_path / "values.npy")
    means = result.mean_by_class()
    assert list(means) == sorted(set(y.tolist()))
    for c, mean in means.items():
        np.testing.assert_allclose(mean, values[y == c].mean(axis=0), rtol=1e-5, atol=1e-7)
    predicted = result.mean_by_class("prediction")
    for c, mean in predicted.items():
        np.testing.assert_allclose(mean, values[result.predictions == c].mean(axis=0), rtol=1e-5, atol=1e-7)

    fig = result.to_figure(class_names=["a", "b", "c", "d"])
    rows = np.stack([means[c] for c in sorted(means)])
    scale = Scale("all", colors.scale_max(rows, "all", 2.0), 2.0)
    maps = [im for ax in fig.axes for im in ax.images if im.get_gid() != "sw-colorbar"]
    np.testing.assert_array_equal(np.asarray(maps[0].get_array()), scale.rgba(rows))
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == [f"{n} (n={(y == c).sum()})" for n, c in zip("abcd", range(4))]


def test_image_class_means_are_tiles_on_one_scale(rng, tmp_path):
    model = torch_cnn()
    x = rng.normal(size=(24, 3, 12, 12)).astype(np.float32)
    result = sw.attribute_dataset(model, x, batch_size=8, path=tmp_path, progress=False)
    fig = result.to_figure()
    means = result.mean_by_class()
    assert set(means) == set(result.predictions.tolist())
    layout = infer_layout((3, 12, 12), "torch")
    display = np.stack([layout.reduce(m) for m in means.values()])
    scale = Scale("all", colors.scale_max(display, "all", 2.0), 2.0)
    tiles = [im for ax in fig.axes for im in ax.images if im.get_gid() != "sw-colorbar"]
    assert len(tiles) == len(means)
    for tile, shown in zip(tiles, display):
        np.testing.assert_array_equal(np.asarray(tile.get_array()), scale.rgba(shown))


# -------------------------------------------------------------------- ray
def test_ray_engine_gives_the_local_numbers(rng, tmp_path):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    model = torch_mlp()
    x, y = _data(rng, n=70)
    options = dict(method="smoothgrad", n_samples=3, seed=5, batch_size=16, labels=y, progress=False)
    local = sw.attribute_dataset(model, x, path=tmp_path / "local", **options)
    # No workers started ahead of the driver, no metrics agent: a third of the start-up time here.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             _system_config={"prestart_worker_first_driver": False, "enable_metrics_collection": False})
    try:
        context = ray.data.DataContext.get_current()
        before = context.execution_options.preserve_order, context.enable_progress_bars
        remote = sw.attribute_dataset(model, x, path=tmp_path / "ray", engine="ray", **options)
        assert (context.execution_options.preserve_order, context.enable_progress_bars) == before
    finally:
        ray.shutdown()
    assert local.complete and remote.complete and len(remote) == 70
    for name in ("values.npy", "targets.npy", "predictions.npy", "labels.npy", "batches.jsonl", "manifest.json"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
