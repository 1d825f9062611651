/** anywidget entry of JacobianGrid: every output × every input on one locked colour scale. */
import { Announcer, injectA11yStyle } from "./a11y";
import { BarList } from "./bars";
import { toIndex, type Sign } from "./colors";
import { field, select } from "./controls";
import { figureExports } from "./exporting";
import { h } from "./dom";
import { Frame, FRAME_TRAITS } from "./frame";
import { GRID_CSS, MatrixView, TilesView, type GridContext, type GridView } from "./grid_views";
import { type MapLayout } from "./mapview";
import { onChanges, tensor, update, type RenderProps } from "./model";
import { orderRows, windowAround, type RowQuery } from "./rows";
import { injectStyle } from "./style";
import { slug } from "./text";

/** Column j of a rows × size matrix. */
export function column(values: ArrayLike<number>, rows: number, size: number, j: number): number[] {
  return Array.from({ length: rows }, (_, r) => values[r * size + j]);
}

/** Outputs listed in the hover panel, centred on the hovered one. */
const PROFILE_ROWS = 15;
const TOP_OPTIONS: [string, string][] = [["0", "all"], ["10", "top 10"], ["50", "top 50"], ["100", "top 100"]];

function render({ model, el }: RenderProps): () => void {
  const frame = new Frame(model, el, "jacobian-grid");
  injectStyle(el, "sw-style-grid", GRID_CSS);
  injectA11yStyle(el);
  const announcer = new Announcer();
  const layout = model.get("_layout") as MapLayout;
  const rows = model.get("_rows") as number[];
  const labels = model.get("_labels") as string[];
  const rowIndex = new Map(rows.map((f, i) => [f, i]));
  const scores = () => tensor(model, "_scores")?.values ?? new Float32Array(0);
  const profile = new BarList(undefined, "how the hovered input moves each output");
  const profileTitle = h("div", { class: "sw-panel-head" }, "Hover an input");
  const profileNote = h("div", { class: "sw-note" }, "to see how it moves every output");
  let values: Float32Array = new Float32Array(0);
  let lastHover: { flat: number; j: number; name: string } | null = null;
  let scale: { sign: Sign; m: number; lut: Uint8Array } = { sign: "all", m: 1, lut: new Uint8Array(1024) };
  const query: RowQuery = { query: "", sort: "index", top: 0 };
  let order = rows;

  const showProfile = (flat: number, j: number, name: string) => {
    lastHover = { flat, j, name };
    const size = values.length / rows.length;
    const near = windowAround(order.length ? order : rows, flat, PROFILE_ROWS);
    const color = (v: number) => {
      const i = toIndex(v, scale.sign, scale.m) * 4;
      return `rgb(${scale.lut[i]},${scale.lut[i + 1]},${scale.lut[i + 2]})`;
    };
    const value = (f: number) => values[(rowIndex.get(f) ?? 0) * size + j];
    profileTitle.textContent = `How “${name}” moves each output`;
    const list = order.length ? order : rows;
    const at = list.indexOf(near[0]);
    profileNote.textContent = near.length < list.length
      ? `∂output / ∂input · outputs ${at + 1}–${at + near.length} of ${list.length}, around “${labels[flat] ?? flat}”`
      : "∂output / ∂input";
    profile.render(near.map((f) => ({ key: f, label: labels[f] ?? String(f), value: value(f), color: color(value(f)) })), flat);
  };
  const ctx: GridContext = {
    rows,
    labels,
    featureNames: model.get("_feature_names") as string[],
    layout,
    pick: (flat) => update(model, { selected: flat }),
    hover: showProfile,
    tooltip: (text, ev) => frame.tooltip.show(text, ev),
    hideTooltip: () => frame.tooltip.hide(),
  };
  const view: GridView = layout.kind === "vector" ? new MatrixView(ctx) : new TilesView(ctx, scores);

  const search = h("input", { type: "search", placeholder: "search outputs…", "aria-label": "search outputs", "data-sw-role": "search" });
  const sort = select("sort outputs", "sort", [["index", "output order"], ["score", "score ↓"]], (v) => {
    query.sort = v as RowQuery["sort"];
    reorder();
  });
  const top = select("show outputs", "top", TOP_OPTIONS, (v) => {
    query.top = Number(v);
    reorder();
  });
  const count = h("span", { class: "sw-note", "aria-live": "polite" });
  const reorder = () => {
    query.query = search.value;
    order = orderRows(rows, scores(), labels, query);
    view.setOrder(order);
    view.select(Number(model.get("selected")));
    count.textContent = order.length === rows.length ? `${rows.length} outputs` : `${order.length} of ${rows.length} outputs`;
  };
  search.addEventListener("input", reorder);
  search.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && order.length) {
      ev.preventDefault();
      ctx.pick(order[0]);
    }
  });
  const finder = h("div", { class: "sw-panel-head sw-finder" }, [search, field("sort", sort), field("show", top), count]);
  if (rows.length <= 8) finder.style.display = "none";

  const exports = figureExports(model, () => ({
    title: "Jacobian",
    subtitle: frame.sub.textContent ?? "",
    name: `jacobian-${slug(labels[Number(model.get("selected"))] ?? "")}`,
    map: view.compose(),
    colorbar: frame.colorbar.state ?? { lut: scale.lut, sign: scale.sign, m: scale.m, outlierPerc: 0, locked: false },
  }), (message) => frame.errors.show(message));
  frame.toolbar.append(...frame.commonControls(), h("span", { class: "sw-spacer" }), h("span", { class: "sw-exports" }, exports));
  const side = h("div", { class: "sw-panel" }, [profileTitle, profileNote, profile.el]);
  const main = h("div", { class: "sw-view" }, [finder, view.el, h("div", { class: "sw-legend" }, [frame.colorbar.el])]);
  frame.body.append(main, side);
  frame.root.append(announcer.el);
  frame.title.textContent = "Jacobian";
  reorder();

  let imageWire: unknown = undefined;
  const redraw = () => {
    if (model.get("_image") !== imageWire) {
      imageWire = model.get("_image");
      const picture = tensor(model, "_image");
      view.setUnderlay?.(picture ? (picture.values as Uint8Array) : null, picture?.shape[2] ?? 1);
    }
    const jac = tensor(model, "_jacobian");
    if (jac) {
      values = Float32Array.from(jac.values);
      scale = { sign: frame.shownSign, m: frame.scaleFor(values), lut: frame.lut() };
      if (query.sort === "score" || query.top > 0) reorder();
      view.draw(values, scale.sign, scale.m, scale.lut);
    }
    const selected = Number(model.get("selected"));
    view.select(selected);
    announcer.say(String(selected), `selected output ${selected}: ${labels[selected] ?? selected}`);
    const d = layout.display_shape;
    frame.sub.textContent = `${rows.length} outputs × ${d.join("×")} inputs · ${model.get("output")}` + (layout.channel_axis !== null ? " · channels summed" : "");
    if (lastHover) showProfile(lastHover.flat, lastHover.j, lastHover.name);
    frame.sync(Number(model.get("_n_samples")));
  };
  const stop = onChanges(model, [...FRAME_TRAITS, "selected", "output", "_jacobian", "_image"], redraw);
  redraw();
  return () => {
    stop();
    frame.dispose();
  };
}

export default { render };
