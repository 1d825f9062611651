"""Shared test setup: quiet TensorFlow, deterministic seeds."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def no_settled_searches(monkeypatch):
    """Each test's models search their pass sizes afresh: no test inherits the sizes an earlier
    test's model of the same architecture settled on (``saliency_widgets.passes``)."""
    from saliency_widgets import passes

    monkeypatch.setattr(passes, "_SETTLED", {})
