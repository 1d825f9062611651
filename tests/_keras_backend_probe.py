"""One Keras backend's numbers for ``tests/test_keras_backends.py``.

Run as ``KERAS_BACKEND=<tensorflow|torch|jax> python _keras_backend_probe.py out.npz``: builds a
few small Keras models from fixed numpy weights (``np.random.default_rng(0)``, never
``keras.utils.set_random_seed``, which imports TensorFlow), computes with saliency_widgets what the
test compares across backends, and checks in this process what only this process can check:

- the library's gradients and Jacobians against references written out by hand in the framework
  Keras runs on (``tf.GradientTape``; ``torch.autograd.grad`` through the model's layers;
  ``jax.grad`` / ``jax.jacrev`` through ``model.stateless_call``);
- the widgets' readouts against the functions';
- the models unchanged (variables' bytes, ``trainable`` flags, no ``.grad`` on torch variables);
- which frameworks were imported.

Every computation and check runs on its own: an exception or a wrong number is written down (in
``meta["errors"]`` / ``meta["failures"]``) and the rest goes on, so one run shows every defect.
The arrays go to ``out.npz``, the rest as JSON under the key ``__meta__``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import warnings

import numpy as np

#: Relative and absolute (times the reference's largest magnitude) tolerance of the in-process
#: comparisons against the hand-written references: float32 rounding.
RTOL, ATOL = 1e-4, 1e-5

arrays: dict[str, np.ndarray] = {}
meta: dict = {"errors": [], "failures": [], "checked": [], "warnings": {}, "layers": {}, "blocks": {}, "times": {}}


def run(name: str, fn):
    """``fn()``, with an exception written down under ``name`` (returns None then)."""
    start = time.perf_counter()
    try:
        return fn()
    except Exception as err:  # noqa: BLE001 - every defect is reported, not just the first
        meta["errors"].append(f"{name}: {type(err).__name__}: {err}"[:2000] + "\n" +
                              "".join(traceback.format_exception(err)[-4:])[-1500:])
        return None
    finally:
        meta["times"][name] = round(time.perf_counter() - start, 3)


def save(name: str, value) -> None:
    """Stores ``value`` (an array, or a list/tuple/dict of them) under ``name``."""
    if value is None:
        return
    if isinstance(value, dict):
        for key, v in value.items():
            save(f"{name}/{key}", v)
    elif isinstance(value, (list, tuple)):
        for key, v in enumerate(value):
            save(f"{name}/{key}", v)
    else:
        arrays[name] = np.asarray(value)


def check_close(name: str, got, expected) -> None:
    """Writes a failure down unless ``got`` equals ``expected`` to float32 rounding."""
    meta["checked"].append(name)
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    if got.shape != expected.shape:
        meta["failures"].append(f"{name}: shape {got.shape} != expected {expected.shape}")
        return
    atol = ATOL * max(float(np.abs(expected).max(initial=0.0)), 1e-30)
    if not np.allclose(got, expected, rtol=RTOL, atol=atol):
        err = float(np.abs(got - expected).max())
        meta["failures"].append(f"{name}: max |difference| {err:.3g} (largest |expected| "
                                f"{float(np.abs(expected).max()):.3g}, atol {atol:.3g}, rtol {RTOL})")


def check(name: str, ok: bool, message: str) -> None:
    meta["checked"].append(name)
    if not ok:
        meta["failures"].append(f"{name}: {message}")


class ImportWatch:
    """Writes down every import of another framework's top module with the file that asked for
    it, and makes those in ``blocked`` absent, as on a machine without them (``sys.modules[name] =
    None``: ``import`` raises ImportError, ``importlib.util.find_spec`` returns None), so nothing
    may need them."""

    def __init__(self, watched: tuple[str, ...], blocked: tuple[str, ...]) -> None:
        import builtins
        import importlib

        self.watched, self.blocked = watched, blocked
        self.attempts: list[list[str]] = []
        for name in blocked:
            sys.modules[name] = None
        original_import, original_import_module = builtins.__import__, importlib.import_module

        def watched_import(name, *args, **kwargs):
            self.note(name)
            return original_import(name, *args, **kwargs)

        def watched_import_module(name, *args, **kwargs):
            self.note(name)
            return original_import_module(name, *args, **kwargs)

        builtins.__import__, importlib.import_module = watched_import, watched_import_module

    def note(self, name: str) -> None:
        top = name.partition(".")[0]
        if top in self.watched and (top in self.blocked or top not in sys.modules):
            frames = [f for f in traceback.extract_stack()[:-2] if "importlib" not in f.filename]
            importer = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
            via = [f"{f.filename}:{f.lineno}" for f in frames if "saliency_widgets" in f.filename][-1:]
            self.attempts.append([name, importer, *via])


def loaded(name: str) -> bool:
    return sys.modules.get(name) is not None


def main(out: str) -> None:
    # Keras on torch or JAX must not need TensorFlow: the probe runs as on a machine without it.
    other = os.environ.get("KERAS_BACKEND") in ("torch", "jax")
    watch = ImportWatch(("tensorflow", "torch", "jax"), ("tensorflow",)) if other else None
    clock = time.perf_counter()
    import keras

    meta["times"]["<import keras>"] = round(time.perf_counter() - clock, 3)
    meta["modules_after_import_keras"] = {m: loaded(m) for m in ("tensorflow", "torch", "jax")}
    if watch is not None:
        watch.attempts.clear()  # what Keras imports by itself at import

    backend = keras.backend.backend()
    meta["backend"] = backend
    ops = keras.ops
    L = keras.layers
    from models import keras_grad  # the hand-written gradient of the backend's framework (tests/models.py)
    rng = np.random.default_rng(0)

    def set_weights(model):
        model.set_weights([(rng.normal(size=w.shape) * 0.5).astype(np.float32) for w in model.get_weights()])
        return model

    # --------------------------------------------------------------- the models
    cnn = set_weights(keras.Sequential([
        keras.Input((8, 8, 2)),
        L.Conv2D(4, 3, padding="same", name="conv1"),
        L.Conv2D(4, 3, padding="same", activation="relu", name="conv2"),
        L.Flatten(name="flatten"),
        L.Dense(3, activation="softmax", name="probs"),
    ], name="cnn"))
    # Zeros as the initializers of the models whose weights are all set here (the CNN keeps its own,
    # which the randomization check draws from): Keras on JAX compiles every random initializer.
    z = {"kernel_initializer": "zeros"}
    zr = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}
    simple_rnn = set_weights(keras.Sequential([
        keras.Input((5, 2)), L.SimpleRNN(4, name="rnn", **zr), L.Dense(3, name="out", **z),
    ], name="simple_rnn_model"))
    gated = set_weights(keras.Sequential([
        keras.Input((6, 3)), L.LSTM(4, return_sequences=True, name="lstm", **zr), L.GRU(3, name="gru", **zr),
        L.Dense(2, name="out", **z),
    ], name="gated"))
    a = keras.Input((4,), name="a")
    b = keras.Input((3,), name="b")
    h = L.Dense(6, activation="tanh", name="hidden", **z)(L.Concatenate(name="concat")([a, b]))
    two = set_weights(keras.Model({"a": a, "b": b}, [L.Dense(3, activation="softmax", name="cls", **z)(h),
                                                      L.Dense(2, name="reg", **z)(h)], name="two"))
    # A softmax called as a function (no layer to skip): output="logits" must warn, naming head=.
    v = keras.Input((4,), name="v")
    functional_softmax = set_weights(keras.Model(v, ops.softmax(L.Dense(3, name="scores", **z)(v)), name="fsoftmax"))
    models = {"cnn": cnn, "simple_rnn": simple_rnn, "gated": gated, "two": two, "fsoftmax": functional_softmax}

    x_img = rng.normal(size=(2, 8, 8, 2)).astype(np.float32)
    x_rnn = rng.normal(size=(2, 5, 2)).astype(np.float32)
    x_gated = rng.normal(size=(2, 6, 3)).astype(np.float32)
    x_two = {"a": rng.normal(size=(2, 4)).astype(np.float32), "b": rng.normal(size=(2, 3)).astype(np.float32)}
    x_vec = rng.normal(size=(2, 4)).astype(np.float32)

    def state(model):
        return ([ops.convert_to_numpy(w.value).tobytes() for w in model.variables],
                [w.trainable for w in model.variables], [layer.trainable for layer in model._flatten_layers()])

    before = {name: state(m) for name, m in models.items()}
    meta["times"]["<build models>"] = round(time.perf_counter() - clock, 3)

    import saliency_widgets as sw

    # --------------------------------------------- hand-written references, this backend's framework
    def call(model, inputs):
        """The Keras model's own call, in inference mode (JAX: ``stateless_call`` on its variables)."""
        if backend == "jax":
            y, _ = model.stateless_call([w.value for w in model.trainable_variables],
                                        [w.value for w in model.non_trainable_variables], inputs, training=False)
            return y
        return model(inputs, training=False)

    def jacobian(f, x):
        """(batch, n, *sample shape): d f(x)[i, k] / d x[i] (f: (batch, ...) → (batch, n)), one
        hand-written gradient per output k (samples never mix, so the sum over the batch's k-th
        outputs differentiates each sample's)."""
        n = int(np.prod(f(ops.convert_to_tensor(x)).shape[1:]))
        return np.stack([keras_grad(lambda ts: ops.sum(ops.reshape(f(ts[0]), (len(x), n))[:, k]), [x])[0]
                         for k in range(n)], axis=1)

    def selected(y, targets):
        """Σ_i y[i, targets[i]]: its gradient is each sample's gradient of its target."""
        return ops.sum(y * ops.one_hot(ops.convert_to_tensor(np.asarray(targets, np.int32)), y.shape[1],
                                       dtype=y.dtype))

    def model_input(model):
        """The model's symbolic input, structured as it is called (a Sequential's one tensor)."""
        return model.inputs[0] if isinstance(model, keras.Sequential) else model.input

    def pre_activation(model, layer_name, inputs):
        """``layer_name``'s (a Dense) output before its activation: its input through the model's
        layers, times its kernel, plus its bias."""
        dense = model.get_layer(layer_name)
        body = keras.Model(model_input(model), dense.input)
        return ops.matmul(call(body, inputs), ops.convert_to_tensor(dense.kernel.value)) + \
            ops.convert_to_tensor(dense.bias.value)

    def hidden_of(model, layer_name, inputs):
        return call(keras.Model(model_input(model), model.get_layer(layer_name).output), inputs)

    cnn_logits = lambda xt: pre_activation(cnn, "probs", xt)  # noqa: E731

    two_in = [x_two["a"], x_two["b"]]

    def as_dict(ts):
        return {"a": ts[0], "b": ts[1]}

    def reference_cnn():
        targets = [0, 2]
        check_close("reference/cnn gradient (logits)", sw.saliency(cnn, x_img, targets),
                    keras_grad(lambda ts: selected(cnn_logits(ts[0]), targets), [x_img])[0])
        check_close("reference/cnn gradient (probabilities)",
                    sw.saliency(cnn, x_img, targets, output="probabilities"),
                    keras_grad(lambda ts: selected(call(cnn, ts[0]), targets), [x_img])[0])
        check_close("reference/cnn jacobian (logits)", sw.jacobian(cnn, x_img), jacobian(cnn_logits, x_img))
        check_close("reference/cnn jacobian (probabilities)", sw.jacobian(cnn, x_img, output="probabilities"),
                    jacobian(lambda xt: call(cnn, xt), x_img))

    def reference_rnn(name, model, x, targets, with_jacobian=True):
        check_close(f"reference/{name} gradient", sw.saliency(model, x, targets),
                    keras_grad(lambda ts: selected(call(model, ts[0]), targets), [x])[0])
        if with_jacobian:
            check_close(f"reference/{name} jacobian", sw.jacobian(model, x), jacobian(lambda xt: call(model, xt), x))

    def reference_heads():
        ref_cls = keras_grad(lambda ts: selected(pre_activation(two, "cls", as_dict(ts)), [2, 2]), two_in)
        for head in (0, "cls", two.get_layer("cls")):
            got = sw.saliency(two, x_two, 2, head=head)
            for key, ref in zip("ab", ref_cls):
                check_close(f"reference/two head={head!r} gradient [{key}]", got[key], ref)
        ref_reg = keras_grad(lambda ts: selected(call(two, as_dict(ts))[1], [1, 1]), two_in)
        for head in (1, "reg", two.get_layer("reg")):
            got = sw.saliency(two, x_two, 1, head=head)
            for key, ref in zip("ab", ref_reg):
                check_close(f"reference/two head={head!r} gradient [{key}]", got[key], ref)
        ref_hidden = keras_grad(lambda ts: selected(hidden_of(two, "hidden", as_dict(ts)), [4, 4]), two_in)
        got = sw.saliency(two, x_two, 4, head="hidden")
        for key, ref in zip("ab", ref_hidden):
            check_close(f"reference/two head='hidden' gradient [{key}]", got[key], ref)
        b = ops.convert_to_tensor(x_two["b"])
        check_close("reference/two jacobian head='reg' [a]", sw.jacobian(two, x_two, head="reg")["a"],
                    jacobian(lambda at: call(two, {"a": at, "b": b})[1], x_two["a"]))

    def reference_layer():
        """layer=: the gradient with respect to the hidden activation, from there to the cls logits."""
        act = ops.convert_to_numpy(hidden_of(two, "hidden", x_two))
        cls = two.get_layer("cls")
        ref = keras_grad(lambda ts: selected(ops.matmul(ts[0], ops.convert_to_tensor(cls.kernel.value))
                                        + ops.convert_to_tensor(cls.bias.value), [2, 2]), [act])[0]
        check_close("reference/two layer='hidden' gradient", sw.saliency(two, x_two, 2, head="cls", layer="hidden"),
                    ref)

    run("reference cnn", reference_cnn)
    run("reference simple_rnn", lambda: reference_rnn("simple_rnn", simple_rnn, x_rnn, [1, 1]))
    # (no Jacobian of the LSTM + GRU model: its first TensorFlow Jacobian traces for ~12 s)
    run("reference gated", lambda: reference_rnn("gated", gated, x_gated, [1, 0], with_jacobian=False))
    run("reference heads", reference_heads)
    run("reference layer=", reference_layer)

    # ------------------------------------------------------ the numbers compared across backends
    methods = {
        "gradient": {}, "input_x_gradient": {}, "integrated_gradients": {"steps": 16},
        "smoothgrad": {"n_samples": 6, "seed": 0},
        "occlusion": {}, "occlusion_2x2": {"window": (2, 2)}, "gradcam": {}, "gradcam_conv1": {"layer": "conv1"},
        "gradcam_plus_plus": {},
    }
    for label, kw in methods.items():
        method = label.split("_2x2")[0].split("_conv1")[0]
        save(f"cnn/saliency/{label}", run(f"cnn saliency {label}", lambda: sw.saliency(cnn, x_img, method=method,
                                                                                        **kw)))
        save(f"cnn/saliency/{label}/target1",
             run(f"cnn saliency {label} target=1", lambda: sw.saliency(cnn, x_img, 1, method=method, **kw)))

    def attribution(key, model, x, **kw):
        result = sw.attribute(model, x, **kw)
        save(f"{key}/values", result.values)
        save(f"{key}/outputs", result.outputs)
        save(f"{key}/targets", np.asarray(result.targets))
        if result.completeness_error is not None:
            save(f"{key}/completeness_error", result.completeness_error)

    for method in ("gradient", "integrated_gradients", "occlusion"):
        kw = {"steps": 16} if method == "integrated_gradients" else {}
        run(f"cnn attribute {method}", lambda: attribution(f"cnn/attribute/{method}", cnn, x_img, method=method, **kw))
    save("cnn/probabilities", run("cnn probabilities", lambda: sw.saliency(cnn, x_img, 1, output="probabilities")))
    save("cnn/jacobian", run("cnn jacobian", lambda: sw.jacobian(cnn, x_img)))
    save("cnn/jacobian/outputs", run("cnn jacobian outputs=", lambda: sw.jacobian(cnn, x_img, outputs=[2, 0])))
    save("cnn/jacobian/probabilities", run("cnn jacobian probabilities",
                                           lambda: sw.jacobian(cnn, x_img, output="probabilities")))
    save("cnn/head=conv2", run("cnn head='conv2'", lambda: sw.saliency(cnn, x_img, (3, 4, 1), head="conv2")))
    save("cnn/layer=conv2", run("cnn layer='conv2'", lambda: sw.saliency(cnn, x_img, 1, layer="conv2")))

    for name, model, x, methods in (
            ("simple_rnn", simple_rnn, x_rnn, ("gradient", "input_x_gradient", "integrated_gradients", "smoothgrad",
                                               "occlusion")),
            ("gated", gated, x_gated, ("gradient", "input_x_gradient", "integrated_gradients"))):
        for method in methods:
            kw = {"steps": 16} if method == "integrated_gradients" else {"n_samples": 4, "seed": 0} \
                if method == "smoothgrad" else {}
            save(f"{name}/saliency/{method}",
                 run(f"{name} saliency {method}", lambda: sw.saliency(model, x, method=method, **kw)))
    save("simple_rnn/jacobian", run("simple_rnn jacobian", lambda: sw.jacobian(simple_rnn, x_rnn)))
    save("gated/layer=lstm", run("gated layer='lstm'", lambda: sw.saliency(gated, x_gated, 1, layer="lstm")))

    heads = {"index0": 0, "index1": 1, "name_cls": "cls", "name_reg": "reg", "object_cls": two.get_layer("cls"),
             "object_reg": two.get_layer("reg"), "hidden": "hidden"}
    for label, head in heads.items():
        save(f"two/head/{label}", run(f"two head={label}", lambda: sw.saliency(two, x_two, 1, head=head)))
        if label in ("index0", "name_reg", "object_cls"):
            save(f"two/head/{label}/probabilities",
                 run(f"two head={label} probabilities",
                     lambda: sw.saliency(two, x_two, 1, head=head, output="probabilities")))
    save("two/jacobian/cls", run("two jacobian cls", lambda: sw.jacobian(two, x_two, head="cls")))
    for method in ("gradient", "input_x_gradient", "integrated_gradients", "smoothgrad"):
        kw = {"steps": 16} if method == "integrated_gradients" else {"n_samples": 4, "seed": 0} \
            if method == "smoothgrad" else {}
        save(f"two/layer=hidden/{method}",
             run(f"two layer='hidden' {method}",
                 lambda: sw.saliency(two, x_two, 2, head="cls", layer=two.get_layer("hidden"), method=method, **kw)))
    run("two attribute layer ig", lambda: attribution("two/attribute/layer=hidden", two, x_two, target=2, head="cls",
                                                      layer="hidden", method="integrated_gradients", steps=16))

    # ---------------------------------------------------------------------- checks
    def checks():
        save("checks/completeness/cnn", sw.checks.completeness(cnn, x_img, 1, steps=16))
        save("checks/completeness/two", sw.checks.completeness(two, x_two, 2, head="cls", steps=16))
        logit = sw.checks.random_logit(cnn, x_img, 1, n=2, seed=0)
        save("checks/random_logit/cnn/others", logit.others)
        save("checks/random_logit/cnn/correlations", logit.correlations)
        gradient = sw.saliency(cnn, x_img, 1)
        di = sw.checks.deletion_insertion(cnn, x_img, gradient, 1, steps=4)
        save("checks/deletion_insertion/cnn/deletion", di.deletion)
        save("checks/deletion_insertion/cnn/insertion", di.insertion)

    run("sw.checks", checks)

    def randomization():
        result = sw.checks.randomization(cnn, x_img, 1, seed=0)
        meta["randomization_layers"] = list(result.layers)
        save("checks/randomization/original", result.original)  # the copies' weights are each backend's draws

    run("sw.checks.randomization", randomization)

    # ------------------------------------------------------- final activations and warnings
    def activations():
        from saliency_widgets.backends import get_backend
        from saliency_widgets.structure import flatten

        found = {}
        for name, model, x, head in (("cnn", cnn, x_img, None), ("two cls", two, x_two, "cls"),
                                     ("two reg", two, x_two, "reg"), ("fsoftmax", functional_softmax, x_vec, None)):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                sw.saliency(model, x, 1, head=head)
            engine = get_backend(model)
            spec, _ = flatten(x, engine.to_numpy)
            found[name] = {"backend": type(engine).__name__, "framework": engine.framework,
                           "skipped": engine.skipped_activation(engine.query(spec, head=head)),
                           "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught
                                               if issubclass(w.category, sw.SaliencyWarning)})}
        meta["activations"] = found

    run("final activations", activations)

    # ------------------------------------------------------------------- layers and weights
    def weights():
        for name, model in models.items():
            infos = sw.layers(model)
            meta["layers"][name] = [[i.name, i.type, list(i.output_shape) if i.output_shape is not None else None,
                                     int(i.n_params)] for i in infos]
            for info in infos:
                if not info.n_params:
                    continue
                for split in (True, False):
                    key = f"{name}/{info.name}/{'split' if split else 'whole'}"
                    blocks = sw.layer_weights(model, info.name, split_gates=split)
                    meta["blocks"][key] = [[bl.name, bl.role, bl.gate, bl.source, list(bl.shape)] for bl in blocks]
                    for k, bl in enumerate(blocks):
                        save(f"blocks/{key}/{k}", bl.array)
        blocks = sw.layer_weights(simple_rnn, 0)
        meta["simple_rnn_blocks_by_index"] = [[bl.name, bl.role, bl.source, list(bl.shape)] for bl in blocks]
        kernel, recurrent, bias = simple_rnn.get_layer("rnn").get_weights()
        for bl, expected in zip(blocks, (kernel, recurrent, bias)):
            check(f"weights/simple_rnn block {bl.name} equals get_weights()", np.array_equal(bl.array, expected),
                  "values differ from the layer's get_weights()")

    run("layers and weights", weights)

    # ---------------------------------------------------------------- widgets (tier A)
    def widgets():
        w = sw.SaliencyMap(cnn, x_img)
        check_close("widget/SaliencyMap attribution (arg-max)", w.attribution, sw.saliency(cnn, x_img, w.target)[0])
        save("widgets/saliency_map/start", w.attribution)
        meta["saliency_map_start_target"] = int(w.target)
        w.target = 2
        check_close("widget/SaliencyMap attribution (target=2)", w.attribution, sw.saliency(cnn, x_img, 2)[0])
        save("widgets/saliency_map/target2", w.attribution)
        w.method = "gradcam"
        check_close("widget/SaliencyMap gradcam (target=2)", w.attribution,
                    sw.saliency(cnn, x_img, 2, method="gradcam")[0])
        g = sw.JacobianGrid(cnn, x_img[:1])
        check_close("widget/JacobianGrid jacobian", g.jacobian, sw.jacobian(cnn, x_img[:1])[0])
        g.selected = 2
        check("widget/JacobianGrid retarget", g.selected == 2, f"selected is {g.selected}")
        save("widgets/jacobian_grid", g.jacobian)
        r = sw.SaliencyMap(simple_rnn, x_rnn, target=1)
        check_close("widget/SaliencyMap rnn", r.attribution, sw.saliency(simple_rnn, x_rnn, 1)[0])
        inspector = sw.WeightInspector(simple_rnn)
        meta["weight_inspector"] = {"start": inspector.layer,
                                    "blocks": [[bl.name, list(bl.shape)] for bl in inspector.blocks]}
        for bl, ref in zip(inspector.blocks, sw.layer_weights(simple_rnn, inspector.layer)):
            check(f"widget/WeightInspector block {bl.name}", np.array_equal(bl.array, ref.array), "values differ")
        inspector.layer = "out"
        meta["weight_inspector"]["out"] = [[bl.name, list(bl.shape)] for bl in inspector.blocks]
        gi = sw.WeightInspector(gated, layer="gru")
        meta["weight_inspector"]["gru"] = [[bl.name, list(bl.shape)] for bl in gi.blocks]

    run("widgets", widgets)

    # --------------------------------------------------------------- generated text (a keras_hub causal LM)
    def generation():
        import keras_hub

        backbone = keras_hub.models.GPT2Backbone(vocabulary_size=20, num_layers=2, num_heads=2, hidden_dim=16,
                                                 intermediate_dim=32, max_sequence_length=32)
        lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
        lm.set_weights([rng_weights.normal(scale=0.2, size=w.shape).astype(np.float32) for w in lm.get_weights()])
        before_lm = state(lm)
        prompt, continuation = np.array([2, 10, 4, 3, 10, 5]), [3, 7, 1, 9]
        for method in ("input_x_gradient", "gradient", "integrated_gradients"):
            options = {"steps": 32} if method == "integrated_gradients" else {}
            result = sw.attribute_generation(lm, prompt, continuation=continuation, method=method, **options)
            save(f"generation/{method}/scores", result.scores)
            if method == "gradient":  # its rows are rounding noise: GPT-2's embeddings feed LayerNorms
                check("generation/gradient rows said to be rounding noise",
                      any("0 up to rounding" in note for note in result.notes), f"notes: {result.notes}")
                continue
            save(f"generation/{method}/matrix", result.matrix)
            if method == "integrated_gradients":
                check("generation/integrated gradients complete", result.completeness_error < 0.01,
                      f"completeness error {result.completeness_error}")
        check("unchanged/causal LM variables", state(lm)[0] == before_lm[0], "a variable's bytes changed")

    rng_weights = np.random.default_rng(7)
    run("generation", generation)

    # --------------------------------------------------------------- the models unchanged
    for name, model in models.items():
        after = state(model)
        check(f"unchanged/{name} variables", after[0] == before[name][0], "a variable's bytes changed")
        check(f"unchanged/{name} trainable flags", after[1:] == before[name][1:], "a trainable flag changed")
        if backend == "torch":
            with_grad = [w.path for w in model.variables if getattr(w.value, "grad", None) is not None]
            check(f"unchanged/{name} no .grad on torch variables", not with_grad, f".grad written on {with_grad}")
    meta["modules"] = {m: loaded(m) for m in ("tensorflow", "torch", "jax")}
    meta["import_attempts"] = watch.attempts if watch is not None else []
    meta["times"]["<total>"] = round(time.perf_counter() - clock, 3)
    np.savez(out, __meta__=np.array(json.dumps(meta)), **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
