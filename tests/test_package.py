"""Packaging: the import stays light, and the public names are there."""

import subprocess
import sys

import saliency_widgets as sw


def test_import_does_not_import_frameworks():
    code = ("import sys, saliency_widgets; "
            "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_functional_api():
    for name in ("saliency", "jacobian", "attribute", "config", "SaliencyError"):
        assert hasattr(sw, name), name
    assert sw.METHODS == ("gradient", "input_x_gradient", "smoothgrad", "integrated_gradients", "gradcam",
                          "gradcam_plus_plus", "occlusion")
