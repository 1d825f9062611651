/** anywidget entry of WeightInspector: layer list + the selected layer's weight blocks. */
import { button, ErrorBox, exportButtons, statusBadge } from "./controls";
import { decode, type WireArray } from "./decode";
import { h, throttleFrame } from "./dom";
import { formatValue } from "./format";
import { Heatmap, Tooltip } from "./heatmap";
import { cellSize } from "./layout";
import { onChanges, update, type AnyModel, type RenderProps } from "./model";
import { injectStyle } from "./style";
import { histogramBars, paramsText, scaleCaption, shapeText, weightTooltip } from "./weight_format";

interface LayerRow {
  name: string;
  type: string;
  output_shape: (number | null)[] | null;
  n_params: number;
}

interface BlockWire {
  name: string;
  source: string;
  shape: number[];
  axes: string[];
  description: string;
  layout: string;
  row_label: string;
  col_label: string;
  rule: string;
  m: number;
  stats: { min: number; max: number; mean: number; std: number };
  hist: number[];
  values: WireArray;
  index: WireArray;
}

const CSS = `
.sw-layers .sw-bar{grid-template-columns:minmax(60px,1fr) auto;row-gap:0}
.sw-layer-meta{grid-column:1 / span 2;color:var(--sw-muted);font-size:11px;font-weight:400}
.sw-layer-empty{opacity:.55}
.sw-eq{margin:0;padding:6px 10px;background:var(--sw-soft);border-radius:6px;font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,monospace;white-space:pre-wrap}
.sw-blocks{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
.sw-card{display:flex;flex-direction:column;gap:4px;padding:8px;border:1px solid var(--sw-line);border-radius:8px;flex:0 1 228px;min-width:180px}
.sw-card-head{display:flex;gap:8px;align-items:baseline;flex-wrap:wrap}
.sw-card-head b{font-weight:600}
.sw-ylabel{writing-mode:vertical-rl;transform:rotate(180deg);color:var(--sw-muted);font-size:11px;text-align:center;padding-left:4px}
.sw-xlabel{color:var(--sw-muted);font-size:11px;text-align:center}
.sw-hist{width:140px;height:34px;image-rendering:auto}
`;

function injectInspectorStyle(el: HTMLElement): void {
  injectStyle(el);
  injectStyle(el, "sw-style-weights", CSS);
}

/** One block: header, description, heatmap with axis labels, histogram and scale caption. */
class BlockCard {
  readonly el = h("div", { class: "sw-card" });
  readonly heat: Heatmap;
  readonly size: { width: number; height: number };

  constructor(readonly block: BlockWire, lut: Uint8Array, tooltip: Tooltip) {
    const values = decode(block.values) as Float32Array;
    const index = decode(block.index) as Int32Array;
    const [rows, cols] = block.values.shape;
    const cell = cellSize(rows, cols, 220, rows === 1 ? 24 : 220, 0.25, 28);
    this.size = { width: Math.max(1, cols * cell), height: Math.max(rows === 1 ? 14 : 1, rows * cell) };
    this.heat = new Heatmap({ "data-sw-block": block.name });
    this.heat.setDisplaySize(this.size.width, this.size.height);
    this.heat.draw(values, rows, cols, "all", block.m, lut);
    const hover = throttleFrame((ev: MouseEvent) => {
      const c = this.heat.cellFromEvent(ev);
      const k = c ? c.row * cols + c.col : -1;
      if (k < 0 || index[k] < 0) return tooltip.hide();
      tooltip.show(weightTooltip(block.name, values[k], index[k], block.shape, block.axes), ev);
    });
    this.heat.canvas.addEventListener("mousemove", hover);
    this.heat.canvas.addEventListener("mouseleave", () => requestAnimationFrame(() => tooltip.hide()));

    const stage = h("div", { class: "sw-stage" }, [this.heat.canvas]);
    const xlabel = h("div", { class: "sw-xlabel" }, block.col_label ? `${block.col_label} →` : "");
    xlabel.style.width = `${this.size.width}px`;
    const matrix = h("div", { class: "sw-matrix" }, [h("div", { class: "sw-ylabel" }, block.row_label ? `${block.row_label} →` : ""), stage, h("div", {}), xlabel]);
    const s = block.stats;
    this.el.append(
      h("div", { class: "sw-card-head" }, [h("b", {}, block.name), h("span", { class: "sw-sub" }, `${shapeText(block.shape)} · ${block.source}`)]),
      h("div", { class: "sw-note" }, block.description),
      matrix,
      h("div", { class: "sw-note" }, scaleCaption(block.m, block.rule)),
      h("div", { class: "sw-legend" }, [
        histogram(block.hist, s.min, s.max),
        h("div", { class: "sw-note" }, `min ${formatValue(s.min)} · max ${formatValue(s.max)} · mean ${formatValue(s.mean)} · std ${formatValue(s.std)}`),
      ]),
    );
  }
}

/** A small bar chart of the value histogram, with a line at 0. */
function histogram(counts: number[], lo: number, hi: number): HTMLCanvasElement {
  const canvas = h("canvas", { class: "sw-hist", width: 280, height: 68, "data-sw-role": "histogram" });
  const ctx = canvas.getContext("2d") as CanvasRenderingContext2D;
  const { heights, zeroAt } = histogramBars(counts, lo, hi);
  const w = canvas.width / Math.max(1, heights.length);
  ctx.fillStyle = "#9db3e0";
  heights.forEach((v, i) => ctx.fillRect(i * w + 1, canvas.height * (1 - v), w - 2, canvas.height * v));
  if (zeroAt !== null) {
    ctx.fillStyle = "#5f6673";
    ctx.fillRect(Math.round(zeroAt * canvas.width) - 1, 0, 2, canvas.height);
  }
  return canvas;
}

/** All block canvases stacked with their names, for PNG/SVG export. */
function composeBlocks(cards: BlockCard[]): HTMLCanvasElement {
  const scale = 2;
  const pad = 20;
  const width = Math.max(200, ...cards.map((c) => c.size.width * scale));
  const height = cards.reduce((sum, c) => sum + c.size.height * scale + pad, 0) || 1;
  const out = h("canvas", { width, height });
  const ctx = out.getContext("2d") as CanvasRenderingContext2D;
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  let y = 0;
  for (const card of cards) {
    ctx.fillStyle = "#1f2430";
    ctx.font = "13px sans-serif";
    ctx.fillText(card.block.name, 0, y + 14);
    ctx.drawImage(card.heat.canvas, 0, y + pad, card.size.width * scale, card.size.height * scale);
    y += card.size.height * scale + pad;
  }
  return out;
}

function layerRow(row: LayerRow, selected: boolean, onClick: () => void): HTMLElement {
  const el = h("div", {
    class: `sw-bar${row.n_params === 0 ? " sw-layer-empty" : ""}`,
    role: "button",
    tabindex: 0,
    "data-sw-layer": row.name,
    "aria-pressed": String(selected),
    title: row.n_params === 0 ? "no parameters" : undefined,
  }, [
    h("span", { class: "sw-bar-label" }, row.name),
    h("span", { class: "sw-bar-value" }, row.type),
    h("span", { class: "sw-layer-meta" }, `out ${shapeText(row.output_shape)} · ${paramsText(row.n_params)} params`),
  ]);
  el.addEventListener("click", onClick);
  el.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") onClick();
  });
  return el;
}

function render({ model, el }: RenderProps): () => void {
  injectInspectorStyle(el);
  const root = h("div", { class: "sw-root", "data-sw-widget": "weight-inspector" });
  const tooltip = new Tooltip(root);
  const title = h("span", { class: "sw-title" });
  const sub = h("span", { class: "sw-sub" });
  const status = statusBadge();
  const errors = new ErrorBox();
  const note = h("div", { class: "sw-note" });
  const list = h("div", { class: "sw-list sw-layers", role: "list" });
  const equation = h("pre", { class: "sw-eq", "data-sw-role": "equation" });
  const blocks = h("div", { class: "sw-blocks" });
  const view = h("div", { class: "sw-view" }, [equation, blocks]);
  let cards: BlockCard[] = [];
  const split = button("split gates", "split-gates", () => update(model, { split_gates: !model.get("split_gates") }), "one block per LSTM/GRU gate");
  const toolbar = h("div", { class: "sw-toolbar", role: "toolbar" }, [
    split,
    h("span", { class: "sw-spacer" }),
    ...exportButtons(() => ({ canvas: composeBlocks(cards), title: `weights of ${model.get("layer")}`, name: `weights-${model.get("layer")}` })),
  ]);
  const panel = h("div", { class: "sw-panel" }, [h("div", { class: "sw-panel-head" }, "Layers"), list]);
  root.append(h("div", { class: "sw-head" }, [title, sub, status]), toolbar, errors.el, note, h("div", { class: "sw-body" }, [panel, view]));
  el.replaceChildren(root);

  const select = (name: string) => {
    if (name === model.get("layer")) return;
    status.dataset.busy = "true";
    view.classList.add("sw-stale");
    update(model, { layer: name });
  };

  const redraw = () => {
    const layer = String(model.get("layer"));
    const rows = model.get("_layers") as LayerRow[];
    list.replaceChildren(...rows.map((r) => layerRow(r, r.name === layer, () => select(r.name))));
    const info = rows.find((r) => r.name === layer);
    title.textContent = `Weights of “${layer}”`;
    sub.textContent = info ? `${info.type} · output ${shapeText(info.output_shape)} · ${paramsText(info.n_params)} params` : "";
    split.setAttribute("aria-pressed", String(Boolean(model.get("split_gates"))));
    const eq = String(model.get("_equation") ?? "");
    equation.textContent = eq;
    equation.hidden = !eq;
    const lut = decode(model.get("_lut")) as Uint8Array;
    cards = (model.get("_blocks") as BlockWire[]).map((b) => new BlockCard(b, lut, tooltip));
    blocks.replaceChildren(...cards.map((c) => c.el));
    note.textContent = String(model.get("_note") ?? "");
    errors.show(String(model.get("_error") ?? ""));
    status.dataset.busy = "false";
    view.classList.remove("sw-stale");
  };
  const stop = onChanges(model, ["layer", "split_gates", "_layers", "_blocks", "_equation", "_note", "_error", "_lut"], redraw);
  redraw();
  return stop;
}

export default { render };
