/** anywidget entry of JacobianGrid: every output × every input on one locked colour scale. */
import { BarList } from "./bars";
import { toIndex, type Sign } from "./colors";
import { composeLayers, exportButtons } from "./controls";
import { h, throttleFrame } from "./dom";
import { formatValue } from "./format";
import { Frame, FRAME_TRAITS } from "./frame";
import { Heatmap } from "./heatmap";
import { cellSize, gridColumns } from "./layout";
import { mapGrid, type MapLayout } from "./mapview";
import { onChanges, tensor, update, type RenderProps } from "./model";

/** Column j of a rows × size matrix. */
export function column(values: ArrayLike<number>, rows: number, size: number, j: number): number[] {
  return Array.from({ length: rows }, (_, r) => values[r * size + j]);
}

interface GridView {
  el: HTMLElement;
  draw(values: Float32Array, sign: Sign, m: number, lut: Uint8Array): void;
  select(flat: number): void;
  compose(): HTMLCanvasElement;
}

interface Context {
  rows: number[];
  labels: string[];
  featureNames: string[];
  layout: MapLayout;
  pick(flat: number): void;
  /** Called with the input index (flat in the display map) under the pointer, and its name. */
  hoverInput(j: number, name: string): void;
  tooltip(text: string, ev: MouseEvent): void;
  hideTooltip(): void;
}

/** Vector inputs: one rows × inputs heatmap with clickable row labels. */
function matrixView(ctx: Context): GridView {
  const n = ctx.layout.display_shape[0];
  const r = ctx.rows.length;
  const cell = cellSize(r, n, 620, 420, 0.5, 28);
  const heat = new Heatmap();
  heat.setDisplaySize(n * cell, r * cell);
  const stage = h("div", { class: "sw-stage" }, [heat.canvas]);
  const selMark = h("div", { class: "sw-mark" });
  const colMark = h("div", { class: "sw-mark" });
  colMark.style.display = "none";
  stage.append(selMark, colMark);
  const rowLabels = h("div", { class: "sw-rowlabels" });
  const rowEls = ctx.rows.map((flat) => {
    const row = h("div", { role: "button", tabindex: "0", "data-sw-output": String(flat), "aria-pressed": "false", title: ctx.labels[flat] ?? String(flat) }, ctx.labels[flat] ?? String(flat));
    row.style.height = `${cell}px`;
    row.style.fontSize = `${Math.min(12, Math.max(8, cell - 2))}px`;
    row.addEventListener("click", () => ctx.pick(flat));
    rowLabels.append(row);
    return row;
  });
  if (cell < 8) rowLabels.style.display = "none";
  const colLabels = h("div", { class: "sw-collabels" });
  colLabels.style.width = `${n * cell}px`;
  if (cell >= 10) {
    for (let j = 0; j < n; j++) {
      const span = h("span", {}, ctx.featureNames[j] ?? String(j));
      span.style.left = `${j * cell + cell / 2 - 3}px`;
      colLabels.append(span);
    }
  }
  let values: Float32Array = new Float32Array(0);
  const name = (j: number) => ctx.featureNames[j] ?? `input ${j}`;
  heat.canvas.addEventListener("click", (ev) => {
    const c = heat.cellFromEvent(ev);
    if (c) ctx.pick(ctx.rows[c.row]);
  });
  heat.canvas.addEventListener("mousemove", throttleFrame((ev: MouseEvent) => {
    const c = heat.cellFromEvent(ev);
    if (!c) return;
    colMark.style.display = "block";
    Object.assign(colMark.style, { left: `${c.col * cell}px`, top: "0px", width: `${cell}px`, height: `${r * cell}px` });
    ctx.hoverInput(c.col, name(c.col));
    ctx.tooltip(`${ctx.labels[ctx.rows[c.row]]} ← ${name(c.col)}\n∂out/∂in ${formatValue(values[c.row * n + c.col])}`, ev);
  }));
  heat.canvas.addEventListener("mouseleave", () => requestAnimationFrame(() => { colMark.style.display = "none"; ctx.hideTooltip(); }));
  return {
    el: h("div", { class: "sw-matrix" }, [rowLabels, stage, h("div", {}), colLabels]),
    draw(v, sign, m, lut) {
      values = v;
      heat.draw(v, r, n, sign, m, lut);
    },
    select(flat) {
      const i = ctx.rows.indexOf(flat);
      rowEls.forEach((el, k) => el.setAttribute("aria-pressed", String(k === i)));
      selMark.style.display = i < 0 ? "none" : "block";
      Object.assign(selMark.style, { left: "0px", top: `${i * cell}px`, width: `${n * cell}px`, height: `${cell}px` });
    },
    compose: () => composeLayers([heat.canvas], n * cell * Math.max(1, Math.ceil(400 / (n * cell))), r * cell * Math.max(1, Math.ceil(400 / (n * cell)))),
  };
}

/** Image and sequence inputs: one small map per output. */
function tilesView(ctx: Context, scores: () => ArrayLike<number>): GridView {
  const geo = mapGrid(ctx.layout);
  const size = geo.rows * geo.cols;
  const cell = cellSize(geo.rows, geo.cols, 84, 84, 0.25, 6);
  const [w, hgt] = [geo.cols * cell, geo.rows * cell];
  const grid = h("div", { class: "sw-grid" });
  grid.style.gridTemplateColumns = `repeat(${gridColumns(ctx.rows.length, 10)}, max-content)`;
  const name = (k: number) => {
    const row = Math.floor(k / geo.cols);
    const col = k % geo.cols;
    return ctx.layout.kind === "image" ? `pixel (${row}, ${col})` : `t = ${col}, ${ctx.featureNames[row] ?? `feature ${row}`}`;
  };
  let values: Float32Array = new Float32Array(0);
  const marks: HTMLElement[] = [];
  const tiles = ctx.rows.map((flat, i) => {
    const heat = new Heatmap({ "data-sw-output": String(flat) });
    heat.setDisplaySize(w, hgt);
    const mark = h("div", { class: "sw-mark" });
    mark.style.display = "none";
    marks.push(mark);
    const caption = h("span", { class: "sw-tile-label" });
    const tile = h("div", { class: "sw-tile", role: "button", tabindex: "0", "data-sw-output": String(flat), "aria-pressed": "false", title: ctx.labels[flat] ?? String(flat) }, [
      h("div", { class: "sw-stage" }, [heat.canvas, mark]),
      caption,
    ]);
    tile.style.maxWidth = `${Math.max(w + 8, 60)}px`;
    tile.addEventListener("click", () => ctx.pick(flat));
    heat.canvas.addEventListener("mousemove", throttleFrame((ev: MouseEvent) => {
      const c = heat.cellFromEvent(ev);
      if (!c) return;
      const k = c.row * geo.cols + c.col;
      for (const mk of marks) Object.assign(mk.style, { display: "block", left: `${c.col * cell}px`, top: `${c.row * cell}px`, width: `${Math.max(cell, 2)}px`, height: `${Math.max(cell, 2)}px` });
      const at = geo.at ? geo.at(k) : k;
      ctx.hoverInput(at, name(k));
      ctx.tooltip(`${ctx.labels[flat]} ← ${name(k)}\n∂out/∂in ${formatValue(values[i * size + at])}`, ev);
    }));
    heat.canvas.addEventListener("mouseleave", () => requestAnimationFrame(() => { marks.forEach((mk) => (mk.style.display = "none")); ctx.hideTooltip(); }));
    grid.append(tile);
    return { heat, tile, caption, flat };
  });
  return {
    el: grid,
    draw(v, sign, m, lut) {
      values = v;
      const s = scores();
      tiles.forEach((t, i) => {
        t.heat.draw(v.subarray(i * size, (i + 1) * size), geo.rows, geo.cols, sign, m, lut, { at: geo.at });
        t.caption.textContent = `${ctx.labels[t.flat] ?? t.flat} · ${formatValue(s[t.flat])}`;
      });
    },
    select(flat) {
      tiles.forEach((t) => t.tile.setAttribute("aria-pressed", String(t.flat === flat)));
    },
    compose() {
      const cols = gridColumns(tiles.length, 10);
      const scale = Math.max(1, Math.ceil(64 / Math.max(w, 1)));
      const [tw, th] = [w * scale, hgt * scale];
      const out = composeLayers([], cols * (tw + 4), Math.ceil(tiles.length / cols) * (th + 4));
      const c2 = out.getContext("2d") as CanvasRenderingContext2D;
      c2.imageSmoothingEnabled = false;
      tiles.forEach((t, i) => c2.drawImage(t.heat.canvas, (i % cols) * (tw + 4), Math.floor(i / cols) * (th + 4), tw, th));
      return out;
    },
  };
}

function render({ model, el }: RenderProps): () => void {
  const frame = new Frame(model, el, "jacobian-grid");
  const layout = model.get("_layout") as MapLayout;
  const rows = model.get("_rows") as number[];
  const labels = model.get("_labels") as string[];
  const profile = new BarList();
  const profileTitle = h("div", { class: "sw-panel-head" }, "Hover an input");
  const profileNote = h("div", { class: "sw-note" }, "to see how it moves every output");
  let values: Float32Array = new Float32Array(0);
  let lastHover: { j: number; name: string } | null = null;
  let scale: { sign: Sign; m: number; lut: Uint8Array } = { sign: "all", m: 1, lut: new Uint8Array(1024) };
  const showProfile = (j: number, name: string) => {
    lastHover = { j, name };
    const size = values.length / rows.length;
    const col = column(values, rows.length, size, j);
    const color = (v: number) => {
      const i = toIndex(v, scale.sign, scale.m) * 4;
      return `rgb(${scale.lut[i]},${scale.lut[i + 1]},${scale.lut[i + 2]})`;
    };
    profileTitle.textContent = `How “${name}” moves each output`;
    profileNote.textContent = "∂output / ∂input";
    profile.render(rows.map((flat, r) => ({ key: flat, label: labels[flat] ?? String(flat), value: col[r], color: color(col[r]) })), Number(model.get("selected")));
  };
  const ctx: Context = {
    rows,
    labels,
    featureNames: model.get("_feature_names") as string[],
    layout,
    pick: (flat) => update(model, { selected: flat }),
    hoverInput: showProfile,
    tooltip: (text, ev) => frame.tooltip.show(text, ev),
    hideTooltip: () => frame.tooltip.hide(),
  };
  const scores = () => tensor(model, "_scores")?.values ?? new Float32Array(0);
  const view = layout.kind === "vector" ? matrixView(ctx) : tilesView(ctx, scores);
  const exports = exportButtons(() => ({ canvas: view.compose(), title: "Jacobian", name: "jacobian" }));
  frame.toolbar.append(...frame.commonControls(), h("span", { class: "sw-spacer" }), ...exports);
  const side = h("div", { class: "sw-panel" }, [profileTitle, profileNote, profile.el]);
  const main = h("div", { class: "sw-view" }, [view.el, h("div", { class: "sw-legend" }, [frame.colorbar.el])]);
  frame.body.append(main, side);
  frame.title.textContent = "Jacobian";

  const redraw = () => {
    const jac = tensor(model, "_jacobian");
    if (jac) {
      values = Float32Array.from(jac.values);
      scale = { sign: frame.signValue, m: frame.scaleFor(values), lut: frame.lut() };
      view.draw(values, scale.sign, scale.m, scale.lut);
    }
    view.select(Number(model.get("selected")));
    const d = layout.display_shape;
    frame.sub.textContent = `${rows.length} outputs × ${d.join("×")} inputs · ${model.get("output")}` + (layout.channel_axis !== null ? " · channels summed" : "");
    if (lastHover) showProfile(lastHover.j, lastHover.name);
    frame.sync(Number(model.get("_n_samples")));
  };
  const stop = onChanges(model, [...FRAME_TRAITS, "selected", "output", "_jacobian"], redraw);
  redraw();
  return () => {
    stop();
    frame.dispose();
  };
}

export default { render };
