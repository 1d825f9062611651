"""sw.attribute_dataset on tokenized text: dicts of token ids and masks attributed at the
embedding layer (layer=), for a tiny HF BERT built from a config and a Keras Embedding model,
as a dict of arrays, a list of dict batches and a DataLoader of dict rows; batch by batch
equal to sw.attribute, and against hand-written gradients and completeness."""

from __future__ import annotations

import numpy as np
import pytest

import saliency_widgets as sw

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from _widget_models import tiny_bert  # noqa: E402

SENTENCES = ("the film was great", "a long dull plot again", "not bad at all", "the plot .", "great film",
             "a dull film and a long plot")
BATCH = 4


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    """``(model, x)``: the tiny BERT and its padded ``input_ids`` / ``attention_mask`` for SENTENCES."""
    model, _, x = tiny_bert(tmp_path_factory.mktemp("vocab"), SENTENCES)
    return model, {key: x[key] for key in ("input_ids", "attention_mask")}


def _batches(x, size=BATCH):
    return [{key: v[s:s + size] for key, v in x.items()} for s in range(0, len(x["input_ids"]), size)]


def _rows(x):
    """A DataLoader over rows, each a dict of tensors (default collate stacks them into dict batches)."""
    from torch.utils.data import DataLoader

    rows = [{key: torch.tensor(v[i]) for key, v in x.items()} for i in range(len(x["input_ids"]))]
    return DataLoader(rows, batch_size=BATCH)


def _bert_scores(model, x, embedding=None):
    """Logits and the embedding layer's output (replaced by ``embedding`` when given)."""
    seen = {}

    def hook(module, args, output):
        seen["embedding"] = output if embedding is None else embedding
        return seen["embedding"]

    handle = model.bert.embeddings.register_forward_hook(hook)
    try:
        logits = model(**{key: torch.tensor(v) for key, v in x.items()}).logits
    finally:
        handle.remove()
    return logits, seen["embedding"]


def _bert_gradient(model, x, targets):
    """∂ logit[target] / ∂ embedding output, by torch.autograd.grad written out."""
    logits, embedding = _bert_scores(model, x)
    picked = logits.gather(1, torch.tensor(targets)[:, None]).sum()
    return torch.autograd.grad(picked, embedding)[0].numpy()


@pytest.mark.parametrize("form", ["dict", "batches", "loader"])
@pytest.mark.parametrize("method", ["gradient", "integrated_gradients"])
def test_bert_token_dicts_attributed_at_the_embeddings(bert, tmp_path, form, method):
    model, x = bert
    data = {"dict": x, "batches": _batches(x), "loader": _rows(x)}[form]
    options = {"steps": 8} if method == "integrated_gradients" else {}
    layer = model.bert.embeddings
    result = sw.attribute_dataset(model, data, method=method, layer=layer, batch_size=BATCH, path=tmp_path,
                                  progress=False, **options)
    n, length = x["input_ids"].shape
    assert result.complete and result.values.shape == (n, length, 16)  # (N, *layer_output_shape)
    for start, batch in zip(range(0, n, BATCH), _batches(x)):
        rows = slice(start, start + BATCH)
        expected = sw.attribute(model, batch, method=method, layer=layer, **options)
        scale = np.abs(expected.values).max()
        np.testing.assert_allclose(result.values[rows], expected.values, rtol=1e-5, atol=1e-6 * scale)
        np.testing.assert_array_equal(result.targets[rows], [t[0] for t in expected.targets])
    logits, _ = _bert_scores(model, x)
    np.testing.assert_array_equal(result.predictions, logits.argmax(1).numpy())
    if method == "gradient":
        reference = _bert_gradient(model, x, result.targets)
        np.testing.assert_allclose(result.values, reference, rtol=1e-4, atol=1e-6 * np.abs(reference).max())
    else:  # the completeness error against f(x) − f(zero embedding) computed here (8 steps are far from
        # complete: BERT's LayerNorm makes the path flat but for a jump near zero)
        zero_logits, _ = _bert_scores(model, x, embedding=torch.zeros(n, length, 16))
        gap = (logits - zero_logits).detach().numpy()[np.arange(n), result.targets]
        np.testing.assert_allclose(result.values.sum(axis=(1, 2)) - gap, result.completeness_error, atol=1e-5)
    means = result.mean_by_class()  # by predicted class, over the one attributed array
    assert set(means) == set(result.predictions.tolist()) and means[result.predictions[0]].shape == (length, 16)


@pytest.fixture(scope="module")
def keras_tokens():
    """``(model, embedding, head, x)``: named inputs ``input_ids`` and ``attention_mask`` →
    Embedding × mask → mean over tokens → Dense(3); ``head(activation, mask)`` runs what follows
    the embedding, for a tape reference."""
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(4)
    ids = keras.Input((5,), dtype="int32", name="input_ids")
    mask = keras.Input((5,), dtype="float32", name="attention_mask")
    embedding = keras.layers.Embedding(12, 4, name="embedding")
    pooling, dense = keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(3)

    def head(activation, m):
        return dense(pooling(activation * keras.ops.expand_dims(m, -1)))

    model = keras.Model({"input_ids": ids, "attention_mask": mask}, head(embedding(ids), mask))
    rng = np.random.default_rng(5)
    x = {"input_ids": rng.integers(1, 12, (10, 5)).astype(np.int32),
         "attention_mask": (rng.random((10, 5)) > 0.2).astype(np.float32)}
    return model, embedding, head, x


@pytest.mark.parametrize("method", ["gradient", "integrated_gradients"])
def test_keras_embedding_model_on_token_dicts(keras_tokens, tmp_path, method):
    tf = pytest.importorskip("tensorflow")
    model, embedding, head, x = keras_tokens
    options = {"steps": 16} if method == "integrated_gradients" else {}
    # The mask is floating here: fixed= keeps it out of the attribution all the same.
    kw = dict(method=method, layer=embedding, fixed=["input_ids", "attention_mask"], progress=False, **options)
    as_dict = sw.attribute_dataset(model, x, batch_size=BATCH, path=tmp_path / "dict", **kw)
    as_batches = sw.attribute_dataset(model, _batches(x), path=tmp_path / "batches", **kw)
    assert as_dict.values.shape == (10, 5, 4)
    np.testing.assert_array_equal(as_batches.values, as_dict.values)
    for start, batch in zip(range(0, 10, BATCH), _batches(x)):
        rows = slice(start, start + BATCH)
        # A Keras call may run eagerly or traced: equal to float32 rounding.
        expected = sw.attribute(model, batch, layer=embedding, fixed=["input_ids", "attention_mask"],
                                method=method, **options)
        np.testing.assert_allclose(as_dict.values[rows], expected.values, rtol=1e-5,
                                   atol=1e-6 * np.abs(expected.values).max())
    activation = tf.constant(embedding(x["input_ids"]))
    with tf.GradientTape() as tape:
        tape.watch(activation)
        out = head(activation, x["attention_mask"])
        picked = tf.reduce_sum(tf.gather(out, as_dict.targets, batch_dims=1))
    gradient = tape.gradient(picked, activation).numpy()
    if method == "gradient":
        np.testing.assert_allclose(as_dict.values, gradient, rtol=1e-5, atol=1e-6 * np.abs(gradient).max())
    else:  # the head is linear in the activation: IG from zeros is activation × gradient exactly
        expected = activation.numpy() * gradient
        np.testing.assert_allclose(as_dict.values, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_a_job_shipped_to_workers_finds_its_keras_layer_again(keras_tokens):
    import pickle

    from saliency_widgets.dataset.batches import Batch
    from saliency_widgets.dataset.job import BatchJob
    from saliency_widgets.structure import Structure

    model, embedding, _, x = keras_tokens
    job = BatchJob(model, Structure.of(x), None, "gradient", {"layer": embedding, "fixed": list(x)})
    batch = Batch(0, [x["input_ids"][:BATCH], x["attention_mask"][:BATCH]], None)
    shipped = pickle.loads(pickle.dumps(job.by_name()))  # as Ray ships it: the layer by name
    np.testing.assert_allclose(shipped(batch).columns["values"], job(batch).columns["values"], rtol=1e-5,
                               atol=1e-7)


def test_ray_engine_gives_the_local_bits_on_token_dicts(bert, tmp_path):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    _, x = bert
    model, _, _ = tiny_bert(tmp_path, SENTENCES)  # the same weights, with no passes searched before
    options = dict(method="integrated_gradients", steps=12, layer=model.bert.embeddings, batch_size=BATCH,
                   progress=False)
    local = sw.attribute_dataset(model, x, path=tmp_path / "local", **options)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             _system_config={"prestart_worker_first_driver": False, "enable_metrics_collection": False})
    try:  # the first batch chooses the passes in the driver; the worker's model copy runs the plan
        remote = sw.attribute_dataset(model, _batches(x), path=tmp_path / "ray", engine="ray", **options)
    finally:
        ray.shutdown()
    assert remote.complete and len(remote) == len(SENTENCES)
    np.testing.assert_array_equal(remote.values, local.values)
    assert (tmp_path / "ray" / "batches.jsonl").read_bytes() == (tmp_path / "local" / "batches.jsonl").read_bytes()
