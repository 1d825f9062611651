"""Packaging: the import stays light, and the public names are there."""

import subprocess
import sys

import saliency_widgets as sw


FRAMEWORKS = ('torch', 'tensorflow', 'keras', 'jax', 'flax')


def test_import_does_not_import_frameworks():
    code = f"import sys, saliency_widgets; print(sorted(m for m in {FRAMEWORKS} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_torch_model_imports_no_other_framework():
    """A map, a Jacobian, the weights and a widget of a torch model load torch alone (DESIGN §3.9)."""
    code = ("import sys, numpy as np, torch, saliency_widgets as sw\n"
            "m = torch.nn.Sequential(torch.nn.Linear(4, 3))\n"
            "x = np.ones((2, 4), np.float32)\n"
            "sw.saliency(m, x, method='integrated_gradients'); sw.jacobian(m, x); sw.layer_weights(m, 0)\n"
            "sw.SaliencyMap(m, x).target = 2\n"
            f"print(sorted(m for m in {FRAMEWORKS} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "['torch']"


def test_public_functional_api():
    for name in ("saliency", "jacobian", "attribute", "config", "SaliencyError"):
        assert hasattr(sw, name), name
    assert sw.METHODS == ("gradient", "input_x_gradient", "smoothgrad", "integrated_gradients", "gradcam",
                          "gradcam_plus_plus", "occlusion")
