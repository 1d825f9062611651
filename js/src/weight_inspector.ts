/** anywidget entry of WeightInspector: the layer list and the selected layer's block table. */
import { Announcer, injectA11yStyle } from "./a11y";
import { button, ErrorBox, statusBadge } from "./controls";
import { figureExports } from "./exporting";
import { slug } from "./text";
import { decode } from "./decode";
import { h } from "./dom";
import { Tooltip } from "./heatmap";
import { onChanges, update, type RenderProps } from "./model";
import { injectStyle } from "./style";
import { paramsText, shapeText } from "./weight_format";
import { INSPECTOR_CSS } from "./inspector/css";
import { showEquation } from "./inspector/equation";
import { arrowKeys, layerRow, replaceRows } from "./inspector/layer_list";
import { Legend } from "./inspector/legend";
import { BlockTable } from "./inspector/matrix";
import type { BlockWire, LayerRow, TableWire } from "./inspector/wire";
import { Zoomer } from "./inspector/zoom";
import { composeTable, downsampleNote } from "./inspector/compose";

/** Width assumed before the widget is attached to a page (and can be measured). */
const DEFAULT_WIDTH = 720;

function render({ model, el }: RenderProps): () => void {
  injectStyle(el);
  injectStyle(el, "sw-style-weights", INSPECTOR_CSS);
  injectA11yStyle(el);
  const announcer = new Announcer();
  const root = h("div", { class: "sw-root", "data-sw-widget": "weight-inspector" });
  const tooltip = new Tooltip(root);
  const title = h("span", { class: "sw-title" });
  const sub = h("span", { class: "sw-sub" });
  const status = statusBadge();
  const errors = new ErrorBox();
  const note = h("div", { class: "sw-wi-caption", "data-sw-role": "note" });
  const list = h("div", { class: "sw-list sw-wi-list", role: "list", "aria-label": "layers" });
  const equation = h("div", { class: "sw-wi-eq", "data-sw-role": "equation" });
  const downsampled = h("span", { class: "sw-wi-downsampled", "data-sw-role": "downsample-note", hidden: true });
  const caption = h("div", { class: "sw-wi-caption" });
  const tableHost = h("div", {});
  const legend = new Legend();
  const about = h("details", { class: "sw-wi-about" });
  let table: BlockTable | null = null;
  const lut = () => decode(model.get("_lut")) as Uint8Array;
  const zoom = new Zoomer(tooltip, (request) => update(model, { zoom: request }), () => table?.panels.forEach((p) => p.showMark(null)));
  const view = h("div", { class: "sw-view" }, [equation, tableHost, caption, zoom.view.el, legend.el, about]);
  const split = button("split gates", "split-gates", () => update(model, { split_gates: !model.get("split_gates") }), "one row per LSTM/GRU gate");
  const toolbar = h("div", { class: "sw-toolbar", role: "toolbar" }, [
    split,
    downsampled,
    h("span", { class: "sw-spacer" }),
    h("span", { class: "sw-exports" }, figureExports(model, () => ({
      title: title.textContent ?? "",
      subtitle: [sub.textContent, equation.dataset.swText].filter(Boolean).join("\n"),
      name: `weights-${slug(String(model.get("layer")))}`,
      map: composeTable(table),
      colorbar: { lut: lut(), sign: "all", m: (model.get("_table") as TableWire).m, outlierPerc: 0, locked: false },
    }), (message) => errors.show(message))),
  ]);
  const panel = h("div", { class: "sw-panel" }, [h("div", { class: "sw-panel-head" }, "Layers"), list]);
  root.append(h("div", { class: "sw-head" }, [title, sub, status]), toolbar, errors.el, note, h("div", { class: "sw-body" }, [panel, view]), announcer.el);
  el.replaceChildren(root);
  arrowKeys(list);

  const width = () => view.clientWidth || DEFAULT_WIDTH;

  const select = (name: string) => {
    if (name === model.get("layer")) return;
    status.dataset.busy = "true";
    view.classList.add("sw-stale");
    update(model, { layer: name });
  };

  const fit = () => {
    if (!table) return;
    table.fit(width());
    const text = downsampleNote(table.downsampling());
    downsampled.textContent = text;
    downsampled.hidden = !text;
  };

  const redrawList = () => {
    const layer = String(model.get("layer"));
    const rows = model.get("_layers") as LayerRow[];
    replaceRows(list, rows.map((r) => layerRow(r, r.name === layer, () => select(r.name))));
    const info = rows.find((r) => r.name === layer);
    title.textContent = `Weights of “${layer}”`;
    sub.textContent = info ? `${info.type} · output ${shapeText(info.output_shape)} · ${paramsText(info.n_params)} params` : "";
    announcer.say(layer, `selected layer ${layer}${info ? ` (${info.type})` : ""}`);
  };

  const redrawLayer = () => {
    const info = model.get("_table") as TableWire;
    const blocks = model.get("_blocks") as BlockWire[];
    const eq = (model.get("_equation") ?? {}) as { math?: string[]; notes?: string[] };
    showEquation(equation, eq.math ?? [], eq.notes ?? []);
    split.hidden = !info.has_gates;
    split.setAttribute("aria-pressed", String(Boolean(model.get("split_gates"))));
    table = new BlockTable(blocks, info, lut(), tooltip, (hit) => table && zoom.open(hit, table, width() - 24, info.m, lut()));
    tableHost.replaceChildren(table.el);
    fit();
    const rowAxis = blocks[0]?.row_label;
    caption.textContent = `${rowAxis ? `rows: ${rowAxis} · ` : ""}hover for exact values · click a map to zoom`;
    legend.update(info, lut());
    about.replaceChildren(
      h("summary", {}, `what the ${blocks.length} blocks are`),
      h("ul", {}, blocks.map((b) => h("li", {}, `${b.description} (source: ${b.source})`))),
    );
    zoom.reset();
  };

  const redraw = () => {
    redrawList();
    redrawLayer();
    note.textContent = String(model.get("_note") ?? "");
    note.hidden = !note.textContent;
    status.dataset.busy = "false";
    view.classList.remove("sw-stale");
  };

  let lastWidth = 0;
  const resize = new ResizeObserver(() => {
    const w = view.clientWidth;
    if (w > 0 && Math.abs(w - lastWidth) > 1) {
      lastWidth = w;
      fit();
    }
  });
  resize.observe(view);
  const stopErrors = errors.follow(model);
  const stopLayer = onChanges(model, ["layer", "split_gates", "_layers", "_blocks", "_table", "_equation", "_note", "_lut"], redraw);
  const stopZoom = onChanges(model, ["_zoom"], () => table && zoom.answer(model.get("_zoom"), table, (model.get("_table") as TableWire).m, lut()));
  redraw();
  return () => {
    stopErrors();
    stopLayer();
    stopZoom();
    resize.disconnect();
  };
}

export default { render };
