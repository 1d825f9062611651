"""The built wheel carries the JS bundle and imports in a clean virtual environment."""

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_wheel_contains_bundle_and_imports_cleanly(tmp_path):
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("saliency_widgets-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for widget in ("saliency_map", "jacobian_grid", "weight_inspector"):
        assert f"saliency_widgets/static/{widget}.js" in names
    assert not any(name.startswith(("tests/", "js/")) for name in names)

    env_dir = tmp_path / "clean"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True, capture_output=True)
    code = ("import sys, saliency_widgets as sw; w = sw.SaliencyMap; "
            "from importlib.resources import files; "
            "assert files('saliency_widgets').joinpath('static/saliency_map.js').is_file(); "
            "print(sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.strip() == "[]"
