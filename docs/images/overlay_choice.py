"""Why image maps are drawn over a darkened grey input: the four candidate overlays side by side
on a small CNN trained on sklearn digits (white strokes on black). Run: .venv/bin/python docs/images/overlay_choice.py"""
import numpy as np, torch
from sklearn.datasets import load_digits
from matplotlib.figure import Figure
from saliency_widgets import colors
import saliency_widgets as sw

d = load_digits()
X = (d.images / 16.0).astype(np.float32)[:, None]
y = d.target
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 64, 10))
opt = torch.optim.Adam(model.parameters(), 1e-2)
for _ in range(60):
    opt.zero_grad(); loss = torch.nn.functional.cross_entropy(model(torch.as_tensor(X)), torch.as_tensor(y)); loss.backward(); opt.step()
model.eval()
idx = [0, 7, 13]
x = X[idx]
sal = sw.saliency(model, x, target=[int(y[i]) for i in idx])[:, 0]
pic = np.round(x[:, 0] * 255).astype(np.uint8)
pic = np.repeat(pic[..., None], 3, -1)

def backdrop(p, lo, hi):
    lum = p[..., 0].astype(np.float64)
    return np.floor(lo + (hi - lo) / 255 * lum + 0.5).astype(np.uint8)

options = [("signed RdBu, light backdrop [96,255]", "all", 96, 255),
           ("signed RdBu, darkened backdrop [32,144] (chosen)", "all", 32, 144),
           ("absolute viridis, light backdrop", "absolute_value", 96, 255),
           ("absolute viridis, darkened backdrop [32,144]", "absolute_value", 32, 144)]
fig = Figure(figsize=(12, 9), layout="constrained")
axes = fig.subplots(len(idx), len(options))
for r in range(len(idx)):
    for c, (name, sign, lo, hi) in enumerate(options):
        m = colors.scale_max(sal[r], sign)
        rgba = colors.colorize(sal[r], sign, m=m).copy()
        rgba[..., 3] = colors.overlay_alpha(colors.to_index(sal[r], sign, m), sign)
        out = colors.overlay(rgba, backdrop(pic[r], lo, hi), 0.75)
        axes[r, c].imshow(out, interpolation="nearest"); axes[r, c].set_xticks([]); axes[r, c].set_yticks([])
        if r == 0: axes[r, c].set_title(name, fontsize=9)
fig.savefig(__import__("pathlib").Path(__file__).with_name("overlay-choice.png"), dpi=80)
