/** The class means of DatasetMap: one small map per class on one colour scale, each a filter button. */
import { ColorBar } from "./colorbar";
import { scaleMax, type Sign } from "./colors";
import { h } from "./dom";
import { Heatmap } from "./heatmap";
import { mapGrid, type MapLayout } from "./mapview";
import { thumbSize } from "./thumbs";

export interface MeansData {
  /** "label", "prediction" or "target": what the classes are. */
  by: string;
  classes: number[];
  counts: number[];
  /** classes × display size, in `classes` order. */
  values: Float32Array;
}

export class ClassMeans {
  readonly el = h("div", { class: "sw-means", role: "group", "aria-label": "class means" });
  readonly colorbar = new ColorBar();
  private tiles: { button: HTMLButtonElement; heat: Heatmap }[] = [];
  private geo: ReturnType<typeof mapGrid>;

  constructor(private layout: MapLayout, private data: MeansData, label: (c: number) => string, pick: (c: number) => void) {
    this.geo = mapGrid(layout);
    const size = thumbSize({ rows: this.geo.rows, cols: this.geo.cols, channels: 0 }, layout.kind === "image", 56, 150);
    data.classes.forEach((c, k) => {
      const heat = new Heatmap({ role: "img", "aria-label": `mean map of ${label(c)}` });
      heat.setDisplaySize(size.width, size.height);
      const button = h("button", { class: "sw-mean", type: "button", "data-sw-class": String(c), "aria-pressed": "false", title: `${label(c)}: mean of ${data.counts[k]} samples · click to list them` }, [
        heat.canvas,
        h("span", {}, `${label(c)} · n=${data.counts[k].toLocaleString("en-US")}`),
      ]);
      button.addEventListener("click", () => pick(c));
      this.el.append(button);
      this.tiles.push({ button, heat });
    });
  }

  /** Draws every mean at one scale (the rule over all of them, as DatasetAttribution.to_figure does). */
  draw(sign: Sign, outlierPerc: number, lut: Uint8Array, nonnegative: boolean): number {
    const { rows, cols, at } = this.geo;
    const size = rows * cols;
    const m = scaleMax(this.data.values, sign, outlierPerc);
    this.tiles.forEach((t, k) => t.heat.draw(this.data.values.subarray(k * size, (k + 1) * size), rows, cols, sign, m, lut, { at }));
    this.colorbar.update({ lut, sign, m, outlierPerc, locked: false, nonnegative });
    return m;
  }

  /** Marks the class the gallery is filtered by (null: none). */
  select(c: number | null): void {
    this.tiles.forEach((t, k) => t.button.setAttribute("aria-pressed", String(this.data.classes[k] === c)));
  }

  /** Every mean side by side on one canvas (the offline export). */
  compose(): HTMLCanvasElement {
    const { rows, cols } = this.geo;
    const n = this.tiles.length;
    const strips = rows === 1; // vector means stack into a classes × features matrix
    const out = h("canvas", { width: strips ? cols : Math.max(1, n * (cols + 1) - 1), height: strips ? n : rows });
    const ctx = out.getContext("2d") as CanvasRenderingContext2D;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, out.width, out.height);
    this.tiles.forEach((t, k) => ctx.drawImage(t.heat.canvas, strips ? 0 : k * (cols + 1), strips ? k : 0));
    return out;
  }
}
