"""Property-based fuzzing of every public parameter of ``sw.saliency`` / ``sw.attribute`` / ``sw.jacobian``
with bad values (DESIGN §6): each call either returns a finite float32 array of the right shape or raises a
SaliencyError, never another exception, and the model is left byte-identical (DESIGN §5)."""

import warnings
from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import saliency_widgets as sw  # noqa: E402
from saliency_widgets.attribution import layer_output  # noqa: E402
from models import keras_mlp, torch_mlp  # noqa: E402

EXAMPLES = 100
#: Bad values tried, by parameter: printed at the end of the module, checked by the last test.
TRIED: Counter = Counter()

#: Wrong types, non-finite and negative numbers, huge ints, empty and nested lists, arrays of odd shapes and dtypes.
BAD = st.one_of(
    st.none(), st.booleans(), st.text(max_size=4), st.binary(max_size=2),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(-10**12, 10**12), st.sampled_from([-1, 0, 2**63, 10**9, -(2**31)]),
    st.sets(st.integers(-3, 5), max_size=3), st.dictionaries(st.text(max_size=2), st.integers(-2, 2), max_size=2),
    st.builds(object), st.lists(st.integers(-6, 6), max_size=4),
    st.lists(st.lists(st.integers(-2, 5), max_size=3), max_size=3),
    st.tuples(st.integers(-6, 6), st.integers(-6, 6)), st.lists(st.floats(-2, 2), min_size=1, max_size=3),
    hnp.arrays(st.sampled_from([np.float32, np.int64, np.bool_, np.complex64, np.dtype("U2")]),
               hnp.array_shapes(min_dims=0, max_dims=3, max_side=3)),
    hnp.arrays(st.sampled_from([np.float32, np.int64, np.bool_]), hnp.array_shapes(min_dims=0, max_dims=2, max_side=3),
               elements={"min_value": -6, "max_value": 6}).map(torch.from_numpy),
    st.sampled_from(["0", "1", "2", "dense", "logits", "softmax", "all", "positive"]),
)
#: Where each parameter (the first word of a key) goes: the function and method it is fuzzed through, with
#: cheap settings otherwise.
CALLS = {
    "target": ("saliency", {"method": "gradient"}),
    "target (integrated gradients)": ("attribute", {"method": "integrated_gradients", "steps": 2}),
    "contrast": ("saliency", {"target": 0}),
    "contrast (integrated gradients)": ("attribute", {"method": "integrated_gradients", "steps": 2, "target": 0}),
    "method": ("saliency", {}),
    "output": ("jacobian", {}),
    "head": ("saliency", {}),
    "layer": ("saliency", {}),
    "fixed": ("saliency", {}),
    "n_samples": ("saliency", {"method": "smoothgrad", "n_samples": 2}),
    "noise": ("saliency", {"method": "smoothgrad", "n_samples": 2}),
    "seed": ("saliency", {"method": "smoothgrad", "n_samples": 2}),
    "steps": ("attribute", {"method": "integrated_gradients", "steps": 2}),
    "baseline": ("attribute", {"method": "integrated_gradients", "steps": 2}),
    "baseline (occlusion)": ("saliency", {"method": "occlusion"}),
    "window": ("saliency", {"method": "occlusion"}),
    "stride": ("saliency", {"method": "occlusion", "window": 2}),
    "outputs": ("jacobian", {}),
    "sign": ("saliency", {}),
    "framework": ("saliency", {}),
}


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    print(f"\nfuzzed {sum(TRIED.values())} bad arguments: {dict(TRIED)}")


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(5).normal(size=(2, 6)).astype(np.float32)


@pytest.fixture(scope="module")
def torch_model():
    return torch_mlp()


@pytest.fixture(scope="module")
def keras_model():
    return keras_mlp()


def torch_state(model):
    """Everything a call could change on a torch model: weights, grads, modes and grad flags."""
    return ({k: v.clone() for k, v in model.state_dict().items()}, [p.grad for p in model.parameters()],
            [m.training for m in model.modules()], [p.requires_grad for p in model.parameters()])


def assert_same_torch(model, before):
    weights, grads, modes, flags = torch_state(model)
    assert weights.keys() == before[0].keys() and all(torch.equal(weights[k], before[0][k]) for k in weights)
    assert grads == before[1] == [None] * len(grads)
    assert (modes, flags) == (before[2], before[3])


def keras_state(model):
    return [w.copy() for w in model.get_weights()], [layer.trainable for layer in model.layers]


def assert_same_keras(model, before):
    weights, trainable = keras_state(model)
    assert len(weights) == len(before[0]) and all(np.array_equal(a, b) for a, b in zip(weights, before[0]))
    assert trainable == before[1]


def expected_shape(model, x, name, value, result):
    """The shape a successful call must return."""
    if name == "layer" and value is not None:
        return layer_output(model, x, value).shape
    if name == "outputs" and value is not None:
        return (len(x), len(value if isinstance(value, (list, tuple)) else np.asarray(value)), x.shape[1])
    if result == "jacobian":
        return (len(x), 4, x.shape[1])
    return x.shape


def call(model, x, name, value):
    """One fuzzed call: a finite float32 array of the right shape, or a SaliencyError."""
    function, options = CALLS[name]
    parameter = name.split()[0]
    kw = {**options, parameter: value}
    inputs = (x,) if parameter == "fixed" else x
    TRIED[name] += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if function == "jacobian":
                result = sw.jacobian(model, inputs, **kw)
            else:
                result = getattr(sw, function)(model, inputs, **kw)
                result = result.values if function == "attribute" else result
        except sw.SaliencyError:
            return
    result = result[0] if isinstance(result, tuple) else result
    assert isinstance(result, np.ndarray) and result.dtype == np.float32
    assert result.shape == expected_shape(model, x, parameter, value, function)
    assert np.isfinite(result).all()


FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", list(CALLS))
@FUZZ
@given(value=BAD)
def test_torch_bad_arguments_give_a_saliency_error_and_leave_the_model_alone(torch_model, x, name, value):
    before = torch_state(torch_model)
    call(torch_model, x, name, value)
    assert_same_torch(torch_model, before)


@pytest.mark.parametrize("name", list(CALLS))
@FUZZ
@given(value=BAD)
def test_keras_bad_arguments_give_a_saliency_error_and_leave_the_model_alone(keras_model, x, name, value):
    before = keras_state(keras_model)
    call(keras_model, x, name, value)
    assert_same_keras(keras_model, before)


def test_every_parameter_was_fuzzed():
    if set(TRIED) != set(CALLS):
        pytest.skip("only part of this module ran")
    assert min(TRIED.values()) >= 2 * EXAMPLES  # both frameworks, every example
