/** GenerationMap's matrix view: generated × context on one canvas (like inseq's), one row per generated
 *  chip; the cells no row can use (at and after its own chip) in the theme's grey; the explained rows framed. */
import { colorize, type Sign } from "./colors";
import { h, throttleFrame } from "./dom";
import { formatValue } from "./format";
import { type Tooltip } from "./heatmap";
import { causalLimit, nGenerated, type GenView } from "./generation";
import { cellAt, cellSize } from "./layout";
import { labelStride } from "./rows";
import { fitText, labelColumn } from "./text";
import { shownToken } from "./textview";

const MONO = "11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";

export class GenerationMatrix {
  readonly el = h("div", { class: "sw-gen-matrix" });
  readonly canvas = h("canvas", { "data-sw-role": "heatmap", role: "img", class: "sw-gen-canvas" });
  private rowLabels = h("div", { class: "sw-gen-rows", role: "group", "aria-label": "generated tokens" });
  private colLabels = h("div", { class: "sw-gen-cols" });
  private stage = h("div", { class: "sw-gen-stage" });
  private frame = h("div", { class: "sw-gen-frame" });
  private view: GenView | null = null;
  private cell = 12;
  private painted: unknown[] = [];

  /** `pick(k, extend)` selects generated chip k; `key(ev, k)` handles a key on row k's label. */
  constructor(private pick: (k: number, extend: boolean) => void, key: (ev: KeyboardEvent, k: number) => void, tooltip: Tooltip) {
    this.stage.append(this.canvas, this.frame);
    this.el.append(this.rowLabels, this.stage, h("div", {}), this.colLabels);
    const rowOf = (ev: Event) => Number((ev.target as HTMLElement).closest("[data-sw-row]")?.getAttribute("data-sw-row") ?? NaN);
    this.rowLabels.addEventListener("click", (ev) => Number.isInteger(rowOf(ev)) && pick(rowOf(ev), ev.shiftKey));
    this.rowLabels.addEventListener("keydown", (ev) => Number.isInteger(rowOf(ev)) && key(ev, rowOf(ev)));
    this.canvas.addEventListener("click", (ev) => {
      const c = this.cellAt(ev);
      if (c) pick(c.row, ev.shiftKey);
    });
    this.canvas.addEventListener("mousemove", throttleFrame((ev: MouseEvent) => {
      const c = this.cellAt(ev);
      const v = this.view;
      if (!c || !v) return tooltip.hide();
      const cols = v.tokens.length;
      const usable = c.col < causalLimit(v, c.row + 1);
      const text = `'${shownToken(v.tokens[v.prompt_length + c.row])}' ← '${shownToken(v.tokens[c.col])}'`;
      tooltip.show(usable ? `${text}\nattribution ${formatValue(v.matrix[c.row * cols + c.col])}` : `${text}\nat or after it: cannot have caused it`, ev);
    }));
    this.canvas.addEventListener("mouseleave", () => requestAnimationFrame(() => tooltip.hide()));
  }

  /** Paints `v` at scale m (only when something changed) and frames rows [start, stop). */
  draw(v: GenView, sign: Sign, m: number, lut: Uint8Array, start: number, stop: number, focusRow: number): void {
    if (v !== this.view) this.layout(v);
    const state = [v, sign, m, lut];
    if (state.some((s, i) => s !== this.painted[i])) {
      this.painted = state;
      this.paint(v, sign, m, lut);
    }
    Object.assign(this.frame.style, { top: `${start * this.cell}px`, height: `${(stop - start) * this.cell}px`, width: `${v.tokens.length * this.cell}px` });
    Array.from(this.rowLabels.children).forEach((el, k) => {
      el.setAttribute("aria-current", String(k >= start && k < stop));
      (el as HTMLElement).tabIndex = k === focusRow ? 0 : -1;
    });
  }

  /** Moves keyboard focus to row k's label. */
  focus(k: number): void {
    (this.rowLabels.children[k] as HTMLElement | undefined)?.focus();
  }

  private layout(v: GenView): void {
    this.view = v;
    const rows = nGenerated(v);
    const cols = v.tokens.length;
    this.cell = cellSize(rows, cols, 720, 440, 3, 22);
    const names = v.tokens.map(shownToken);
    const labelWidth = labelColumn(names.slice(v.prompt_length), 180, 30, MONO);
    this.rowLabels.style.width = `${labelWidth}px`;
    this.rowLabels.replaceChildren(
      ...names.slice(v.prompt_length).map((name, k) =>
        h("div", { "data-sw-row": String(k), role: "button", tabindex: "-1", title: name, style: `height:${this.cell}px;line-height:${this.cell}px;font-size:${Math.min(11, Math.max(7, this.cell - 2))}px` }, fitText(name, labelWidth - 8, MONO)),
      ),
    );
    this.rowLabels.style.display = this.cell >= 7 ? "" : "none";
    this.canvas.width = cols;
    this.canvas.height = rows;
    Object.assign(this.canvas.style, { width: `${cols * this.cell}px`, height: `${rows * this.cell}px` });
    const stride = labelStride(this.cell, 13);
    const longest = Math.min(110, labelColumn(names, 110, 0, MONO));
    this.colLabels.style.width = `${cols * this.cell}px`;
    this.colLabels.style.height = `${Math.ceil(longest * Math.sin(Math.PI / 3)) + 10}px`;
    this.colLabels.replaceChildren(
      ...names.flatMap((name, j) => {
        if (j % stride) return [];
        const span = h("span", { title: name, class: j < v.prompt_length ? "" : "sw-gen-col" }, fitText(name, 110, MONO));
        span.style.left = `${j * this.cell + this.cell / 2}px`;
        return [span];
      }),
    );
    this.stage.style.setProperty("--sw-prompt", `${v.prompt_length * this.cell}px`);
  }

  private paint(v: GenView, sign: Sign, m: number, lut: Uint8Array): void {
    const rows = nGenerated(v);
    const cols = v.tokens.length;
    const image = new ImageData(cols, rows);
    colorize(v.matrix, sign, m, lut, image.data);
    for (let k = 0; k < rows; k++) {  // cells a row cannot use: transparent over the stage's theme grey
      for (let j = causalLimit(v, k + 1); j < cols; j++) image.data[(k * cols + j) * 4 + 3] = 0;
    }
    (this.canvas.getContext("2d") as CanvasRenderingContext2D).putImageData(image, 0, 0);
    this.canvas.setAttribute("aria-label", `attribution matrix: ${rows} generated × ${cols} context tokens`);
  }

  private cellAt(ev: MouseEvent): { row: number; col: number } | null {
    const r = this.canvas.getBoundingClientRect();
    const v = this.view;
    return v ? cellAt(ev.clientX - r.left, ev.clientY - r.top, r.width, r.height, nGenerated(v), v.tokens.length) : null;
  }
}
