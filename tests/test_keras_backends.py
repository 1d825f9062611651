"""One Keras model, three Keras backends, equal numbers (DESIGN §3.9).

Keras picks its backend once per process, so ``_keras_backend_probe.py`` runs once per backend
(TensorFlow, torch, JAX), side by side, each in its own process. Each probe builds the same small
models from the same numpy weights (a channels-last CNN, a SimpleRNN, an LSTM + GRU, a two-input /
two-output functional model), computes with saliency_widgets (every method, Grad-CAM at the default
and a named layer, Jacobians, ``head=`` by index / name / layer object, ``layer=``, the checks,
layers and weight blocks, the widgets), and checks in its own process what only it can: the
library against gradients written out by hand in that backend's framework, the widgets' readouts,
the models unchanged, and what was imported. This module compares the three probes' arrays (equal
to float32 rounding) and their weight blocks (identical).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

if importlib.util.find_spec("keras") is None:  # (not imported here: each probe imports it on its backend)
    pytest.skip("keras is not installed", allow_module_level=True)

PROBE = Path(__file__).with_name("_keras_backend_probe.py")
#: Each Keras backend and the module it needs.
BACKENDS = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}
AVAILABLE = [b for b, module in BACKENDS.items() if importlib.util.find_spec(module) is not None]
OTHERS = [b for b in ("torch", "jax") if b in AVAILABLE]
#: Float32 rounding: relative tolerance, and absolute tolerance times the array's largest magnitude.
RTOL, ATOL = 1e-4, 1e-4
#: Completeness measures are rounding noise themselves (|Σ attribution − Δf| ≈ 1e-8): compared to
#: this fraction of the scores' scale (errors) or absolutely (relative errors).
COMPLETENESS_ATOL = 1e-5
PROBE_TIMEOUT_S = 600


@dataclass
class Probe:
    backend: str
    arrays: dict[str, np.ndarray]
    meta: dict
    wall_s: float

    def failures(self, prefix: str) -> list[str]:
        return [f for f in self.meta["failures"] if f.startswith(prefix)]

    def checked(self, prefix: str) -> list[str]:
        return [c for c in self.meta["checked"] if c.startswith(prefix)]


@pytest.fixture(scope="module")
def probes(tmp_path_factory) -> dict[str, Probe]:
    """Each available backend's probe, run side by side (one process per backend)."""
    folder = tmp_path_factory.mktemp("keras_backends")
    start = time.perf_counter()
    running = {}
    for backend in sorted(AVAILABLE, key=lambda b: b != "jax"):  # the longest first
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        log = open(folder / f"{backend}.log", "w")
        process = subprocess.Popen([sys.executable, str(PROBE), str(folder / f"{backend}.npz")], env=env,
                                   stdout=log, stderr=subprocess.STDOUT, cwd=PROBE.parent)
        running[backend] = (process, log, time.perf_counter())
    finished: dict[str, float] = {}
    while len(finished) < len(running) and time.perf_counter() - start < PROBE_TIMEOUT_S:
        for backend, (process, _, _) in running.items():
            if backend not in finished and process.poll() is not None:
                finished[backend] = time.perf_counter()
        time.sleep(0.05)
    results, failed = {}, []
    for backend, (process, log, started) in running.items():
        if process.poll() is None:  # past the timeout
            process.kill()
            process.wait()
        log.close()
        wall = finished.get(backend, time.perf_counter()) - started
        output = (folder / f"{backend}.log").read_text()
        if process.returncode != 0:
            failed.append(f"the {backend} probe failed (exit {process.returncode}):\n{output[-6000:]}")
            continue
        with np.load(folder / f"{backend}.npz") as data:
            arrays = {k: data[k] for k in data.files if k != "__meta__"}
            meta = json.loads(str(data["__meta__"]))
        results[backend] = Probe(backend, arrays, meta, wall)
    assert failed == [], "\n\n".join(failed)
    walls = ", ".join(f"{b} {p.wall_s:.1f} s" for b, p in results.items())
    print(f"\nKeras backend probes side by side: {time.perf_counter() - start:.1f} s wall ({walls})")
    return results


def reference_of(probes: dict[str, Probe], backend: str) -> Probe:
    """The probe ``backend``'s numbers are compared with: TensorFlow's, else another's."""
    others = [b for b in probes if b != backend]
    if not others:
        pytest.skip("only one Keras backend is installed")
    return probes["tensorflow" if "tensorflow" in others else others[0]]


def backend_params(backends):
    return [pytest.param(b, id=b) for b in backends]


# ------------------------------------------------------------------- in each probe's process
@pytest.mark.parametrize("backend", backend_params(AVAILABLE))
def test_every_computation_runs(probes, backend):
    assert probes[backend].meta["errors"] == [], "\n\n".join(probes[backend].meta["errors"])


@pytest.mark.parametrize("backend", backend_params(AVAILABLE))
def test_library_equals_gradients_written_by_hand_in_the_backends_framework(probes, backend):
    """GradientTape / torch.autograd.grad through the model's layers / jax.grad through
    ``model.stateless_call``: gradients and Jacobians (logits and probabilities) of the CNN, the
    RNNs, the two-output model's heads by index, name and layer object, a hidden-layer head, and
    the gradient at a hidden layer (``layer=``)."""
    probe = probes[backend]
    assert probe.failures("reference/") == []
    checked = probe.checked("reference/")
    for expected in ("reference/cnn gradient (logits)", "reference/cnn jacobian (logits)",
                     "reference/cnn jacobian (probabilities)", "reference/simple_rnn jacobian",
                     "reference/gated gradient", "reference/two head=1 gradient [a]",
                     "reference/two layer='hidden' gradient", "reference/two jacobian head='reg' [a]"):
        assert expected in checked
    assert len(checked) == 23


@pytest.mark.parametrize("backend", backend_params(AVAILABLE))
def test_widgets_show_the_functions_numbers(probes, backend):
    """Tier A: SaliencyMap (start, ``target = 2``, Grad-CAM), JacobianGrid (``selected = 2``) and
    WeightInspector (``layer = "out"``) construct and read out ``sw.saliency`` / ``sw.jacobian`` /
    ``sw.layer_weights``."""
    probe = probes[backend]
    assert probe.failures("widget/") == []
    assert len(probe.checked("widget/")) == 9
    inspector = probe.meta["weight_inspector"]
    assert inspector["start"] == "rnn"
    assert inspector["blocks"] == [["input kernel", [2, 4]], ["recurrent kernel", [4, 4]], ["bias", [4]]]
    assert inspector["out"] == [["kernel", [4, 3]], ["bias", [3]]]
    assert len(inspector["gru"]) == 12


@pytest.mark.parametrize("backend", backend_params(AVAILABLE))
def test_the_models_are_left_as_they_were(probes, backend):
    """Variables' bytes and trainable flags unchanged (the causal LM's too); on torch no ``.grad`` on
    any variable."""
    probe = probes[backend]
    assert probe.failures("unchanged/") == []
    assert len(probe.checked("unchanged/")) == (16 if backend == "torch" else 11)


@pytest.mark.parametrize("backend", backend_params(AVAILABLE))
def test_generated_text_is_attributed_on_every_backend(probes, backend):
    """A keras_hub GPT-2 causal LM (random weights, the same on every backend): input × gradient and
    integrated gradients rows computed (compared across backends below), IG complete; the signed
    gradient's rows, which sum to 0 over the embedding axis before a LayerNorm, said to be rounding noise."""
    probe = probes[backend]
    assert probe.failures("generation/") == []
    assert len(probe.checked("generation/")) == 2
    for method in ("input_x_gradient", "integrated_gradients"):
        assert probe.arrays[f"generation/{method}/matrix"].shape == (4, 10)


# ------------------------------------------------------------------------- across backends
def _tolerance(key: str, reference: dict[str, np.ndarray]) -> float:
    expected = reference[key]
    atol = ATOL * float(np.abs(expected).max(initial=0.0))
    if "completeness" in key:
        outputs = reference.get(key.rsplit("/", 1)[0] + "/outputs")
        atol = max(atol, COMPLETENESS_ATOL * (1.0 if outputs is None else float(np.abs(outputs).max())))
    return atol


@pytest.mark.parametrize("backend", backend_params(OTHERS))
def test_backends_give_equal_numbers(probes, backend):
    """Every array of the probe (maps of every method, Jacobians, heads, layer=, checks, widget
    readouts) equal to the reference backend's to float32 rounding; integer arrays (targets, the
    random-logit check's outputs) identical."""
    probe, reference = probes[backend], reference_of(probes, backend)
    assert sorted(probe.arrays) == sorted(reference.arrays)
    assert len(probe.arrays) > 100
    wrong = []
    for key, expected in sorted(reference.arrays.items()):
        got = probe.arrays[key]
        if got.shape != expected.shape:
            wrong.append(f"{key}: shape {got.shape}, {reference.backend} {expected.shape}")
        elif expected.dtype.kind in "iub" or key.startswith("blocks/"):
            if not np.array_equal(got, expected):
                wrong.append(f"{key}: not identical to {reference.backend}'s")
        else:
            atol = _tolerance(key, reference.arrays)
            if not np.allclose(got, expected, rtol=RTOL, atol=atol):
                diff = float(np.abs(got.astype(np.float64) - expected).max())
                wrong.append(f"{key}: max |difference| {diff:.3g}, largest |{reference.backend}| "
                             f"{float(np.abs(expected).max()):.3g}, atol {atol:.3g}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize("backend", backend_params(OTHERS))
def test_layers_weight_blocks_activations_and_widgets_agree(probes, backend):
    probe, reference = probes[backend], reference_of(probes, backend)
    for key in ("layers", "blocks", "simple_rnn_blocks_by_index", "activations", "randomization_layers",
                "weight_inspector", "saliency_map_start_target"):
        assert probe.meta[key] == reference.meta[key], key
    # the weight blocks' values: identical arrays (test_backends_give_equal_numbers compares them exactly)
    assert any(k.startswith("blocks/") for k in probe.arrays)


# ------------------------------------------------------------------ the defects the issue reported
@pytest.mark.parametrize("backend", backend_params(AVAILABLE))
def test_keras_is_treated_as_keras(probes, backend):
    """A Keras model on torch (also a torch.nn.Module) or JAX is a Keras model: the Keras backend,
    Keras layer names (no ``_torch_params``), the three Keras SimpleRNN blocks and no seed-generator
    state, channels-last occlusion, the final softmax skipped for logits, ``head=`` and Grad-CAM."""
    probe = probes[backend]
    meta = probe.meta
    assert {a["backend"] for a in meta["activations"].values()} == {"KerasBackend"}
    assert {a["framework"] for a in meta["activations"].values()} == {"keras"}
    assert {name: [layer[0] for layer in layers] for name, layers in meta["layers"].items()} == {
        "cnn": ["conv1", "conv2", "flatten", "probs"],
        "simple_rnn": ["rnn", "out"],
        "gated": ["lstm", "gru", "out"],
        "two": ["a", "b", "concat", "hidden", "cls", "reg"],
        "fsoftmax": ["v", "scores"],
    }
    assert meta["simple_rnn_blocks_by_index"] == [
        ["input kernel", "input", "kernel", [2, 4]],
        ["recurrent kernel", "recurrent", "recurrent_kernel", [4, 4]],
        ["bias", "bias", "bias", [4]],
    ]
    assert not any("seed" in block[3] for blocks in meta["blocks"].values() for block in blocks)
    assert probe.failures("weights/") == [] and len(probe.checked("weights/")) == 3
    # channels-last: the default occlusion window of an 8×8×2 image spans the 2 channels whole
    occlusion = probe.arrays["cnn/saliency/occlusion"]
    assert occlusion.shape == (2, 8, 8, 2)
    np.testing.assert_array_equal(occlusion[..., 0], occlusion[..., 1])
    assert np.abs(occlusion).max() > 0
    # the final softmax skipped (logits); head= on the two-output model; Grad-CAM (batch, H, W)
    assert meta["activations"]["cnn"] == {"backend": "KerasBackend", "framework": "keras", "skipped": "softmax",
                                          "warnings": []}
    assert meta["activations"]["two cls"]["skipped"] == "softmax"
    assert meta["activations"]["two reg"]["skipped"] is None
    for label in ("index0", "index1", "name_cls", "name_reg", "object_cls", "object_reg", "hidden"):
        assert f"two/head/{label}/a" in probe.arrays
    for key in ("cnn/saliency/gradcam", "cnn/saliency/gradcam_conv1", "cnn/saliency/gradcam_plus_plus"):
        assert probe.arrays[key].shape == (2, 8, 8), key


@pytest.mark.parametrize("backend", backend_params(OTHERS))
def test_occlusion_of_a_channels_last_image_equals_the_reference_backends(probes, backend):
    probe, reference = probes[backend], reference_of(probes, backend)
    for key in ("cnn/saliency/occlusion", "cnn/saliency/occlusion_2x2", "cnn/saliency/occlusion/target1"):
        expected = reference.arrays[key]
        np.testing.assert_allclose(probe.arrays[key], expected, rtol=RTOL, atol=ATOL * np.abs(expected).max())


def test_a_softmax_called_as_a_function_is_named_in_a_warning(probes):
    """No layer to skip: output='logits' explains probabilities, and says so (on every backend)."""
    for probe in probes.values():
        found = probe.meta["activations"]["fsoftmax"]
        assert found["skipped"] is None
        assert len(found["warnings"]) == 1 and "head=" in found["warnings"][0], probe.backend


@pytest.mark.skipif("jax" not in AVAILABLE, reason="JAX is not installed")
def test_keras_on_jax_runs_without_tensorflow_or_torch(probes):
    """The JAX probe runs as on a machine without TensorFlow (``sys.modules["tensorflow"] =
    None``): every computation ran, TensorFlow and torch were never loaded, and no module of
    saliency_widgets asked for another framework. (Keras itself asks for TensorFlow when it
    serialises a layer's config, which ``sw.checks.randomization``'s ``clone_model`` does; it
    carries on without it.)"""
    meta = probes["jax"].meta
    assert meta["errors"] == []
    assert meta["modules"]["tensorflow"] is False
    assert meta["modules"]["torch"] is False
    assert [a for a in meta["import_attempts"] if "saliency_widgets" in a[1]] == []


@pytest.mark.skipif("torch" not in AVAILABLE, reason="torch is not installed")
def test_keras_on_torch_runs_without_tensorflow(probes):
    meta = probes["torch"].meta
    assert meta["errors"] == []
    assert meta["modules"]["tensorflow"] is False
    assert [a for a in meta["import_attempts"] if "saliency_widgets" in a[1]] == []
