"""Tier B: the export buttons download what to_figure() draws (issue 10, item 2)."""

import base64
import xml.etree.ElementTree as ET

import pytest
import torch
from _widget_models import batch

from saliency_widgets.widgets import SaliencyMap

pytestmark = pytest.mark.browser
NAMES = ["alcohol", "malic_acid", "od280/od315_of_diluted_wines", "proline"]
SVG_TEXT = "{http://www.w3.org/2000/svg}text"


def wine_widget():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).eval()
    return SaliencyMap(model, batch(2, 4), target=0, method="integrated_gradients",
                       labels=["class_0", "class_1", "class_2"], feature_names=NAMES)


def svg_texts(data: bytes) -> str:
    return " ".join("".join(t.itertext()) for t in ET.fromstring(data).iter(SVG_TEXT))


@pytest.mark.parametrize("fmt", ["svg", "pdf"])
def test_buttons_ask_the_kernel_and_save_its_file(show, tmp_path, fmt):
    w = wine_widget()
    page = show(w)
    page.click(f'[data-sw-action="export-{fmt}"]')
    sent = [e["content"] for e in page.evaluate("window.__sw.log") if e["type"] == "send"]
    assert sent == [{"type": "export", "format": fmt, "id": sent[0]["id"]}]
    reply, buffers = w._export_reply(sent[0])
    with page.expect_download() as info:
        page.evaluate("([c, b]) => window.__sw.kernelSend(c, b)", [reply, [base64.b64encode(b).decode() for b in buffers]])
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.name == f"saliency-class_0-integrated_gradients.{fmt}"
    assert path.read_bytes() == buffers[0]


def test_a_reply_for_another_view_is_ignored_and_errors_are_shown(show):
    page = show(wine_widget())
    page.click('[data-sw-action="export-png"]')
    page.evaluate("window.__sw.kernelSend({type: 'export', id: 999, filename: 'x.png'}, [btoa('x')])")
    sent = [e["content"] for e in page.evaluate("window.__sw.log") if e["type"] == "send"]
    page.evaluate("(id) => window.__sw.kernelSend({type: 'export', id, error: 'export failed: disk full'})", sent[0]["id"])
    page.wait_for_selector('[data-sw-role="error"]', state="visible")
    assert "disk full" in page.text_content('[data-sw-role="error"]')


def test_offline_page_draws_the_whole_figure(page, tmp_path, artifacts):
    w = wine_widget()
    html = w.to_html(tmp_path / "offline.html")
    page.goto(html.as_uri())
    page.wait_for_function("window.__sw && window.__sw.ready", timeout=30_000)
    assert page.locator('[data-sw-action="export-pdf"]').count() == 0  # no kernel to make a PDF
    with page.expect_download() as info:
        page.click('[data-sw-action="export-svg"]')
    assert info.value.suggested_filename == "saliency-class_0-integrated_gradients.svg"
    svg = (tmp_path / "x.svg")
    info.value.save_as(svg)
    texts = svg_texts(svg.read_bytes())
    for want in ["Saliency of “class_0”", "integrated gradients", *NAMES, "signed (red +, blue −) · top 2% clipped", "0"]:
        assert want in texts, want
    with page.expect_download() as info:
        page.click('[data-sw-action="export-png"]')
    png = tmp_path / "x.png"
    info.value.save_as(png)
    assert png.read_bytes().startswith(b"\x89PNG")
    (artifacts / "export-offline.png").write_bytes(png.read_bytes())
