"""The JAX backend (Flax NNX modules, jax.jit functions, plain functions) against references written
here with jax.grad / jax.jacrev / jax.vjp on an eval-mode clone of each model."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx")
import jax.numpy as jnp  # noqa: E402

import _jax_models as jm  # noqa: E402
import saliency_widgets as sw  # noqa: E402
from saliency_widgets.backends import get_backend, randomized_copies  # noqa: E402
from saliency_widgets.errors import SaliencyError, SaliencyWarning  # noqa: E402

TOL = dict(rtol=1e-4, atol=1e-5)


def reference(model):
    """An eval-mode clone of ``model``: the hand-written references run on it."""
    clone = nnx.clone(model)
    clone.eval()
    return clone


def pure(model):
    """``model`` as a pure function (Flax's functional idiom: a fresh copy per call), for references
    through modules that draw from their rng streams when called (an nnx.RNN's carry)."""
    graphdef, state = nnx.split(model)
    return lambda v: nnx.merge(graphdef, state, copy=True)(v)


def out(f, *args):
    """``f(*args)`` as numpy, compiled as one program (run op by op, JAX compiles every op)."""
    return np.asarray(jax.jit(lambda *a: f(*a))(*args))


def grad_of(f, x, target):
    """∂ f(x)[:, target] / ∂x, by hand."""
    return out(jax.grad(lambda v: f(v)[:, target].sum()), jnp.asarray(x))


def snapshot(model):
    """Every variable's bytes (random-number keys and counts included), every module's class and
    train / eval flags, and the graph definition."""
    values = {}
    for path, var in nnx.to_flat_state(nnx.state(model)):
        v = var.get_value()
        if jnp.issubdtype(v.dtype, jax.dtypes.prng_key):
            v = jax.random.key_data(v)
        values[path] = np.asarray(v).tobytes()
    modules = [(p, type(m), getattr(m, "deterministic", None), getattr(m, "use_running_average", None))
               for p, m in nnx.iter_modules(model)]
    return values, modules, nnx.graphdef(model)


@pytest.fixture(scope="module")
def mlp():
    return jm.mlp()


@pytest.fixture(scope="module")
def cnn():
    return jm.cnn()


@pytest.fixture(scope="module")
def xv():
    return np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype(np.float32)


# ------------------------------------------------------------------ gradients
def test_targets_and_scores_of_an_mlp(mlp, xv):
    ref = reference(mlp)
    per_sample = sw.saliency(mlp, xv, target=[0, 3, 1])
    for i, t in enumerate([0, 3, 1]):
        np.testing.assert_allclose(per_sample[i], grad_of(ref, xv[i:i + 1], t)[0], **TOL)
    argmax = out(ref, xv).argmax(axis=1)
    a = sw.attribute(mlp, xv)
    assert [t[0] for t in a.targets] == argmax.tolist()
    np.testing.assert_allclose(a.outputs, out(ref, xv), **TOL)


def test_gradient_of_a_cnn_with_batch_norm_uses_running_statistics(cnn, images):
    ref = reference(cnn)
    np.testing.assert_allclose(sw.saliency(cnn, images, target=1), grad_of(ref, images, 1), **TOL)
    # Batch statistics would give another number (the model's own BatchNorm in training mode).
    train = nnx.clone(cnn)
    train.train()
    assert not np.allclose(np.asarray(train(images)), np.asarray(ref(images)), atol=1e-3)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_methods_against_hand_written_references(name, mlp, cnn, xv, images):
    model, x = {"mlp": (mlp, xv), "cnn": (cnn, images)}[name]
    ref, axes = reference(model), tuple(range(1, x.ndim))
    gradient = grad_of(ref, x, 1)
    np.testing.assert_allclose(sw.attribute(model, x, target=1, method="gradient").values, gradient, **TOL)
    np.testing.assert_allclose(sw.attribute(model, x, target=1, method="input_x_gradient").values, gradient * x,
                               **TOL)
    # Integrated gradients: complete (up to the quadrature's error at the CNN's ReLU kinks, reported
    # as it is), and the documented Gauss–Legendre sum of gradients computed by hand.
    ig = sw.attribute(model, x, target=1, method="integrated_gradients", steps=64)
    f = out(ref, x)[:, 1] - out(ref, np.zeros_like(x))[:, 1]
    np.testing.assert_allclose(ig.values.sum(axis=axes) - f, ig.completeness_error, atol=1e-6)
    bound = 1e-4 if name == "mlp" else 1e-2 * np.abs(f).max()
    assert np.abs(ig.completeness_error).max() < bound
    nodes, weights = np.polynomial.legendre.leggauss(64)  # the documented quadrature, by hand
    points = (((nodes + 1) / 2).astype(np.float32).reshape(-1, *[1] * x.ndim) * x).reshape(-1, *x.shape[1:])
    at_nodes = grad_of(ref, points, 1).reshape(64, *x.shape)
    np.testing.assert_allclose(ig.values, np.tensordot(weights / 2, at_nodes, axes=1) * x, rtol=1e-4, atol=1e-6)
    if name == "mlp":  # smooth: the midpoint rule agrees too
        alphas = ((np.arange(1000) + 0.5) / 1000).astype(np.float32)
        points = (alphas.reshape(-1, *[1] * x.ndim) * x).reshape(-1, *x.shape[1:])
        riemann = grad_of(ref, points, 1).reshape(1000, *x.shape).mean(axis=0) * x
        np.testing.assert_allclose(ig.values, riemann, rtol=1e-3, atol=1e-5)
    # SmoothGrad: seeded, and the mean gradient of its noisy copies, drawn as the engine documents.
    n, noise, seed = 6, 0.2, 11
    smooth = sw.attribute(model, x, target=1, method="smoothgrad", n_samples=n, noise=noise, seed=seed).values
    np.testing.assert_array_equal(smooth, sw.saliency(model, x, target=1, method="smoothgrad", n_samples=n,
                                                      noise=noise, seed=seed))
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
    eps = rng.standard_normal((n, *x.shape), dtype=np.float32)
    sigma = noise * (x.max(axis=axes, keepdims=True) - x.min(axis=axes, keepdims=True))
    expected = grad_of(ref, (x + eps * sigma).reshape(-1, *x.shape[1:]), 1).reshape(n, *x.shape).mean(axis=0)
    np.testing.assert_allclose(smooth, expected, rtol=1e-4, atol=1e-5)


def test_jacobian_equals_jacrev(mlp, cnn, xv, images):
    for model, x in ((mlp, xv), (cnn, images)):
        ref = reference(model)
        expected = out(jax.vmap(jax.jacrev(lambda v: ref(v[None])[0])), x)
        np.testing.assert_allclose(sw.jacobian(model, x), expected, **TOL)
    np.testing.assert_allclose(sw.jacobian(mlp, xv, outputs=[3, 1]), sw.jacobian(mlp, xv)[:, [3, 1]], **TOL)


def test_model_trained_further_gives_new_numbers(xv):
    model = jm.mlp(seed=5)
    before = sw.saliency(model, xv, target=0)
    model.out.kernel[...] = model.out.kernel[...] * 2.0
    after = sw.saliency(model, xv, target=0)
    np.testing.assert_allclose(after, grad_of(reference(model), xv, 0), **TOL)
    np.testing.assert_allclose(after, 2 * before, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------- heads and layers
def test_heads_of_a_two_output_module():
    x = np.random.default_rng(2).normal(size=(2, 5)).astype(np.float32)
    model = jm.build(jm.TwoHeads)
    ref = reference(model)
    np.testing.assert_allclose(sw.saliency(model, x, target=1, head=1), grad_of(lambda v: ref(v)[1], x, 1), **TOL)
    np.testing.assert_allclose(sw.saliency(model, x, target=2, head=0), grad_of(lambda v: ref(v)[0], x, 2), **TOL)
    np.testing.assert_allclose(sw.saliency(model, x, target=0, head=lambda out: out[0] * out[1][:, :1]),
                               grad_of(lambda v: ref(v)[0] * ref(v)[1][:, :1], x, 0), **TOL)
    # A submodule as head: its own output is explained (by name, or the object).
    trunk = grad_of(lambda v: ref.trunk(v), x, 4)
    np.testing.assert_allclose(sw.saliency(model, x, target=4, head="trunk"), trunk, **TOL)
    np.testing.assert_allclose(sw.saliency(model, x, target=4, head=model.trunk), trunk, **TOL)
    with pytest.raises(SaliencyError, match="2 outputs and none is called 'logits'"):
        sw.saliency(model, x)
    as_dict = jm.build(jm.TwoHeads, as_dict=True)
    np.testing.assert_allclose(sw.saliency(as_dict, x, target=2), grad_of(lambda v: ref(v)[0], x, 2), **TOL)
    np.testing.assert_allclose(sw.saliency(as_dict, x, target=0, head="value"),
                               grad_of(lambda v: ref(v)[1], x, 0), **TOL)


def test_layer_attribution_at_an_embedding_of_token_ids():
    model = jm.build(jm.Tokens)
    ids = np.random.default_rng(3).integers(0, 20, size=(3, 7))
    ref = reference(model)
    e = out(ref.embed, ids)
    g = grad_of(ref.from_embedding, e, 2)
    np.testing.assert_allclose(sw.saliency(model, ids, target=2, layer="embed"), g, **TOL)
    np.testing.assert_allclose(sw.saliency(model, ids, target=2, layer=model.embed, method="input_x_gradient"),
                               e * g, **TOL)
    ig = sw.attribute(model, ids, target=2, layer="embed", method="integrated_gradients")
    f = out(ref.from_embedding, e)[:, 2] - out(ref.from_embedding, np.zeros_like(e))[:, 2]
    np.testing.assert_allclose(ig.values.sum(axis=(1, 2)), f, rtol=1e-4, atol=1e-5)
    jac = sw.jacobian(model, ids, layer="embed")
    assert jac.shape == (3, 3, 7, 4)
    np.testing.assert_allclose(jac[:, 2], g, **TOL)
    with pytest.raises(SaliencyError, match="layer="):
        sw.saliency(model, ids)


def test_gradcam_at_a_conv_equals_a_hand_computation(cnn, images):
    ref = reference(cnn)
    a = out(ref.features, images)
    g = grad_of(ref.classify, a, 0)
    expected = np.maximum((g.mean(axis=(1, 2), keepdims=True) * a).sum(axis=-1), 0)  # SAME padding: no resize
    np.testing.assert_allclose(sw.saliency(cnn, images, target=0, method="gradcam", layer="conv"), expected,
                               rtol=1e-4, atol=1e-6)
    layers = sw.layers(cnn, images)  # built by nnx.merge: attributes sorted by name
    assert [(i.name, i.type, i.output_shape, i.n_params) for i in layers] == [
        ("conv", "Conv", (8, 8, 5), 3 * 3 * 3 * 5 + 5), ("dense", "Linear", (3,), 18),
        ("norm", "BatchNorm", (8, 8, 5), 20)]
    default = sw.attribute(cnn, images, target=0, method="gradcam")
    assert default.layer == "norm"  # the last layer with a spatial output


def test_occlusion_is_the_drop_of_the_target_score(mlp, xv):
    ref = reference(mlp)
    occluded = np.stack([np.where(np.arange(6) == i, 0, xv) for i in range(6)])  # (feature, batch, 6)
    expected = (out(ref, xv)[:, 3] - out(ref, occluded.reshape(-1, 6))[:, 3].reshape(6, -1)).T
    np.testing.assert_allclose(sw.saliency(mlp, xv, target=3, method="occlusion"), expected, rtol=1e-4, atol=1e-5)


def test_refusals_name_what_works(mlp, xv):
    shared = jm.build(jm.Shared)
    with pytest.raises(SaliencyError, match="runs more than once"):
        sw.saliency(shared, xv[:, :4], layer="twice")
    with pytest.raises(SaliencyError, match="no layer 'nope'.*'hidden', 'drop', 'out'"):  # definition order
        sw.saliency(jm.MLP(nnx.Rngs(0)), xv, layer="nope")
    with pytest.raises(SaliencyError, match=r"expects \(batch, \.\.\., 6\) for its first Linear layer"):
        sw.saliency(mlp, xv[:, :5])
    with pytest.raises(SaliencyError, match="'spare' \\(Linear\\) did not run.*e.g. 'hidden', 'out'"):
        sw.saliency(jm.build(jm.Spare), xv, layer="spare")
    bf16 = jnp.asarray(xv, jnp.bfloat16)  # a jax array numpy has no dtype for
    np.testing.assert_allclose(sw.saliency(mlp, bf16, target=0),
                               grad_of(reference(mlp), np.asarray(bf16, np.float32), 0), **TOL)


def test_structured_inputs_are_passed_as_arguments():
    model = jm.build(jm.Pair)
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(2, 4)).astype(np.float32), rng.normal(size=(2, 5)).astype(np.float32)
    ref = reference(model)
    grads = jax.grad(lambda u, v: ref(u, v)[:, 2].sum(), argnums=(0, 1))(a, b)
    as_dict = sw.saliency(model, {"a": a, "b": b}, target=2)
    for got in (sw.saliency(model, (a, b), target=2), (as_dict["a"], as_dict["b"])):
        for g, expected in zip(got, grads):
            np.testing.assert_allclose(g, expected, **TOL)
    only_a = sw.saliency(model, (a, b), target=2, fixed=[1])
    assert only_a[1] is None
    np.testing.assert_allclose(only_a[0], grads[0], **TOL)


def test_threads_give_the_numbers_of_sequential_calls(mlp, xv):
    from concurrent.futures import ThreadPoolExecutor

    expected = [sw.saliency(mlp, xv, target=t, layer="hidden") for t in range(4)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda t: sw.saliency(mlp, xv, target=t, layer="hidden"), [0, 1, 2, 3] * 3))
    for i, g in enumerate(got):
        np.testing.assert_array_equal(g, expected[i % 4])


# --------------------------------------------------------------- functions
@pytest.mark.parametrize("function", [jm.plain_function, jm.jitted_function], ids=["plain", "jit"])
def test_functions_on_jax_arrays(function, xv):
    backend = get_backend(function, "jax")
    assert backend.framework == "jax" and sw.layers(function) == []
    assert get_backend(function) is backend
    np.testing.assert_allclose(sw.saliency(function, xv, target=1), grad_of(jm.plain_function, xv, 1), **TOL)
    expected = out(jax.vmap(jax.jacrev(lambda v: jm.plain_function(v[None])[0])), xv)
    np.testing.assert_allclose(sw.jacobian(function, xv), expected, **TOL)
    with pytest.raises(SaliencyError, match="a jax function has no layers"):
        sw.saliency(function, xv, layer=0)
    with pytest.raises(SaliencyError, match="Flax NNX module"):
        sw.layer_weights(function, 0)
    if function is jm.plain_function:
        ig = sw.attribute(function, xv, target=0, method="integrated_gradients")
        assert np.abs(ig.completeness_error).max() < 1e-4
        with pytest.raises(SaliencyError, match="function returns one array"):
            sw.saliency(function, xv, head=0)


# ------------------------------------------------------------------ weights
def test_layer_weights_show_every_variable_once_as_stored():
    model = jm.build(jm.EveryLayer)
    x = np.zeros((2, 4, 4, 2), np.float32)
    infos = sw.layers(model, x)
    names = [i.name for i in infos]
    # Built by nnx.merge, which keeps attributes sorted by name (a module built by its constructor
    # lists them in definition order: test_refusals_name_what_works).
    assert names == ["model", "batch_norm", "blocks/0", "blocks/1", "conv", "embed", "fast_lstm", "gru",
                     "layer_norm", "lstm", "rms_norm", "simple"]
    shapes = {i.name: i.output_shape for i in infos}
    assert shapes["conv"] == (4, 4, 3) and shapes["lstm"] == (5,) and shapes["blocks/1"] == (2,)
    state = {"/".join(map(str, p)): np.asarray(v.get_value()) for p, v in nnx.to_flat_state(nnx.state(model))
             if not isinstance(v, nnx.RngState)}
    seen: dict[str, list] = {}
    for info in infos:
        blocks = sw.layer_weights(model, info.name)
        assert sum(b.array.size for b in blocks) == info.n_params
        for b in blocks:
            seen.setdefault(b.source, []).append(b)
    assert sorted(seen) == sorted(state)  # every variable, under its path in nnx.state
    for source, blocks in seen.items():
        whole = blocks[0].array if len(blocks) == 1 else np.concatenate([b.array for b in blocks], axis=-1)
        np.testing.assert_array_equal(whole, state[source])  # gates in flax's own packing order
    types = {b.source: (b.name, b.role, b.gate) for bs in seen.values() for b in bs}
    assert types["conv/kernel"] == ("kernel", "kernel", None)
    assert types["batch_norm/var"] == ("moving variance", "kernel", None)
    assert types["embed/embedding"] == ("embeddings", "kernel", None)
    assert types["lstm/if_/kernel"] == ("input kernel · forget gate", "input", "forget")
    assert types["lstm/hg/bias"] == ("bias · cell gate", "bias", "cell")
    assert types["scale"] == ("scale", "kernel", None)  # the root's own Param, shown raw
    gru = sw.layer_weights(model, "gru")
    assert [b.gate for b in gru[:3]] == ["reset", "update", "candidate"]
    np.testing.assert_array_equal(gru[1].array, state["gru/dense_i/kernel"][:, 5:10])
    packed = sw.layer_weights(model, "gru", split_gates=False)
    assert [b.shape for b in packed] == [(3, 15), (5, 15), (15,)]
    assert "r_t = σ(x_t·W_ir + b_ir + h_{t−1}·W_hr)" in sw.layer_equation(model, "gru")
    assert "h_t = o_t ⊙ tanh(c_t)" in sw.layer_equation(model, "lstm")
    assert sw.layer_equation(model, "conv") is None


# ------------------------------------------------------- checks and datasets
def test_checks_and_randomized_copies_leave_the_model_alone(xv):
    model = jm.mlp(seed=9)
    before = snapshot(model)
    rl = sw.checks.random_logit(model, xv, target=0, seed=0, n=2)
    assert rl.correlations.shape == (3, 2)
    di = sw.checks.deletion_insertion(model, xv, sw.saliency(model, xv, target=0), target=0, steps=3)
    np.testing.assert_allclose(di.deletion[:, 0], out(reference(model), xv)[:, 0], **TOL)
    r = sw.checks.randomization(model, xv, target=0, seed=0)
    assert r.layers == ["out", "hidden"] and r.maps.shape == (2, 3, 6)
    copies = randomized_copies(model, cascade=True, seed=0)
    name, first = next(copies)
    assert name == "out"
    assert not np.allclose(first.out.kernel[...], model.out.kernel[...])
    np.testing.assert_array_equal(first.hidden.kernel[...], model.hidden.kernel[...])
    np.testing.assert_allclose(r.maps[0], grad_of(reference(first), xv, 0), **TOL)
    assert snapshot(model) == before


def test_attribute_dataset_locally(mlp, xv, tmp_path):
    result = sw.attribute_dataset(mlp, xv, target=1, batch_size=2, path=tmp_path / "run", progress=False)
    np.testing.assert_allclose(np.asarray(result.values), sw.saliency(mlp, xv, target=1), **TOL)


# --------------------------------------------------------------- widgets
def test_widgets_construct_and_retarget(xv):
    model = jm.mlp(seed=4)
    ref = reference(model)
    w = sw.SaliencyMap(model, xv)
    np.testing.assert_allclose(w.attribution, grad_of(ref, xv[:1], int(np.argmax(out(ref, xv[:1]))))[0], **TOL)
    w.target = 1
    np.testing.assert_allclose(w.attribution, grad_of(ref, xv[:1], 1)[0], **TOL)
    grid = sw.JacobianGrid(model, xv)
    full = sw.jacobian(model, xv)
    np.testing.assert_allclose(grid.jacobian, full[0], **TOL)
    grid.index = 2
    np.testing.assert_allclose(grid.jacobian, full[2], **TOL)
    inspector = sw.WeightInspector(model)
    assert [b.source for b in inspector.blocks] == ["hidden/kernel", "hidden/bias"]
    inspector.layer = "out"
    np.testing.assert_array_equal(inspector.blocks[0].array, np.asarray(model.out.kernel[...]))


# ------------------------------------------------------- the user's model
def test_every_method_leaves_a_training_mode_model_untouched(images):
    model = jm.build(jm.CNN)  # dropout-free, batch norm in training mode
    drop = jm.build(jm.MLP, seed=1)  # dropout in training mode, its rng stream live
    before, before_drop = snapshot(model), snapshot(drop)
    x = np.random.default_rng(4).normal(size=(2, 6)).astype(np.float32)
    with pytest.warns(SaliencyWarning, match="training mode"):
        got = sw.saliency(model, images, target=1)
    np.testing.assert_allclose(got, grad_of(reference(model), images, 1), **TOL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SaliencyWarning)
        for method, kw in (("input_x_gradient", {}), ("smoothgrad", {"n_samples": 3, "seed": 0}),
                           ("integrated_gradients", {"steps": 4}), ("gradcam", {"layer": "conv"})):
            sw.saliency(model, images, target=0, method=method, **kw)
        sw.jacobian(model, images)
        np.testing.assert_allclose(sw.saliency(drop, x, target=0), grad_of(reference(drop), x, 0), **TOL)
        sw.saliency(drop, x, layer="hidden", method="integrated_gradients", steps=3)
    assert snapshot(model) == before and snapshot(drop) == before_drop
    assert model.norm.use_running_average is False and drop.drop.deterministic is False


def test_model_untouched_when_it_raises_half_way():
    model = jm.build(jm.FailsHalfway)
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="fails half way"), warnings.catch_warnings():
        warnings.simplefilter("ignore", SaliencyWarning)
        sw.saliency(model, np.ones((2, 3), np.float32), layer="first")
    assert snapshot(model) == before


def test_jax_path_imports_neither_torch_nor_tensorflow():
    script = textwrap.dedent("""
        import sys
        import numpy as np
        from flax import nnx
        import saliency_widgets as sw
        model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
        x = np.ones((2, 3), np.float32)
        sw.saliency(model, x)
        sw.SaliencyMap(model, x).target = 1
        sw.WeightInspector(model)
        sw.layer_weights(model, 0)
        loaded = sorted(m for m in ("torch", "tensorflow", "keras") if m in sys.modules)
        assert not loaded, loaded
    """)
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


# ------------------------------------------------- recurrent layers, transforms
def test_an_rnn_is_one_layer_and_a_layer_inside_a_transform_is_refused():
    model = jm.build(jm.Recurrent)
    before = snapshot(model)  # its nnx.RNN draws the initial carry from its rng stream at every call
    x = np.random.default_rng(5).normal(size=(2, 5, 3)).astype(np.float32)
    ref = reference(model)
    np.testing.assert_allclose(sw.saliency(model, x, target=1), grad_of(pure(ref), x, 1), **TOL)
    h = np.asarray(pure(ref.rnn)(x))
    at_rnn = jax.grad(lambda v: ref.out(v[:, -1])[:, 1].sum())(h)
    np.testing.assert_allclose(sw.saliency(model, x, target=1, layer="rnn"), at_rnn, **TOL)
    assert [(i.name, i.type, i.output_shape, i.n_params) for i in sw.layers(model, x)] == [
        ("out", "Linear", (2,), 10), ("rnn", "RNN(LSTMCell)", (5, 4), 128)]
    assert [b.source for b in sw.layer_weights(model, "rnn")][:2] == ["rnn/cell/ii/kernel", "rnn/cell/if_/kernel"]
    assert "c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t" in sw.layer_equation(model, "rnn")
    with pytest.raises(SaliencyError, match="inside a JAX transform"):
        sw.saliency(model, x, layer="rnn/cell")
    assert snapshot(model) == before
    vmapped = jm.build(jm.Vmapped)
    with pytest.raises(SaliencyError, match="inside a JAX transform"):
        sw.saliency(vmapped, x[:, 0, :2].repeat(3, axis=1), layer="inner")


def test_output_rows_and_a_layer_whose_calls_are_joined():
    from saliency_widgets.backends.base import LayerRef
    from saliency_widgets.structure import flatten

    model = jm.build(jm.Causal)
    ids = np.random.default_rng(6).integers(0, 11, size=(2, 6))
    backend = get_backend(model)
    spec, entries = flatten(ids, backend.to_numpy)
    query = backend.query(spec, layer=LayerRef("embed", model.embed, calls="all"))
    ref = reference(model)
    e = out(ref.embed, ids)
    positions, tokens, minus = np.array([2, 3, 5]), np.array([4, 0, 7]), np.array([1, 1, 2])

    def scores(v):
        at = jax.nn.log_softmax(ref.from_embedding(v)[:, positions], axis=-1)
        k = np.arange(3)
        return at[:, k, tokens] - at[:, k, minus]

    got_scores, got_layer, got_grads = backend.output_rows(query, entries, positions, tokens, minus=minus,
                                                           normalize="log_softmax")
    np.testing.assert_allclose(got_scores, np.asarray(scores(e)), **TOL)
    np.testing.assert_allclose(got_layer, e, **TOL)
    jac = np.asarray(jax.jacrev(scores)(e))  # (batch, n, batch, 6, 4): each sample's own rows
    np.testing.assert_allclose(got_grads, np.stack([jac[b, :, b] for b in range(2)]), **TOL)
    _, _, with_activation = backend.output_rows(query, entries, positions, tokens, minus=minus,
                                                normalize="log_softmax", activation=e)
    np.testing.assert_allclose(with_activation, got_grads, **TOL)
    _, (gradient,) = backend.vjp(query, entries, 9)
    np.testing.assert_allclose(gradient, jax.grad(lambda v: ref.from_embedding(v).reshape(2, -1)[:, 9].sum())(e),
                               **TOL)
    with pytest.raises(SaliencyError, match="runs more than once"):
        sw.saliency(model, ids, layer="embed")
