import { describe, expect, it } from "vitest";
import { tableLayout, zoomWindow } from "../src/inspector/table";
import { crop, downsample } from "../src/inspector/downsample";
import { parseMath, proseParts, type MathNode } from "../src/inspector/mathml";
import { downsampleNote } from "../src/inspector/compose";
import { pictureCaption } from "../src/weight_format";
import { zoomGeometry } from "../src/inspector/zoom";

const LIMITS = { width: 700, height: 540, gap: 6, minCell: 2, maxCell: 24, maxAspect: 3 };

/** A MathML tree written back as text with _{} subscripts (to compare parses compactly). */
function text(n: MathNode): string {
  if (n.tag === "msub") return `${text(n.children![0])}_{${text(n.children![1])}}`;
  if (n.tag === "mspace") return " ";
  return n.text ?? (n.children ?? []).map(text).join("");
}

describe("inspector table layout", () => {
  it("gives every block of an LSTM(64) gate matrix one cell size that fits", () => {
    const panels = [0, 1, 2, 3].flatMap((row) => [
      { row, col: 0, rows: 64, cols: 8 },
      { row, col: 1, rows: 64, cols: 64 },
      { row, col: 2, rows: 64, cols: 1 },
    ]);
    const l = tableLayout(panels, LIMITS);
    expect([l.fr, l.fc]).toEqual([1, 1]);
    expect(l.ch).toBe(Math.floor(((540 - 18) / 256) * 64) / 64);
    expect(l.cw).toBe(Math.floor(3 * l.ch)); // capped at 3:1
    expect(l.rowHeights.reduce((a, b) => a + b) + 18).toBeLessThanOrEqual(540);
    expect(l.colWidths).toEqual([8 * l.cw, 64 * l.cw, l.cw]);
  });
  it("downsamples a Linear(784 → 10) across its columns until cells reach 2 px", () => {
    const l = tableLayout([{ row: 0, col: 0, rows: 10, cols: 784 }, { row: 0, col: 1, rows: 10, cols: 1 }], LIMITS);
    expect([l.fr, l.fc]).toEqual([1, 3]); // 1×2 would leave 694 / 393 < 2 px per column
    expect(l.colWidths[0] + l.colWidths[1] + 6).toBeLessThanOrEqual(700);
    expect(l.cw).toBeGreaterThanOrEqual(2);
    expect(l.ch).toBe(Math.floor(3 * l.cw));
  });
  it("keeps small matrices at the largest cell", () => {
    const l = tableLayout([{ row: 0, col: 0, rows: 3, cols: 4 }], LIMITS);
    expect([l.cw, l.ch, l.fr, l.fc]).toEqual([24, 24, 1, 1]);
  });
  it("zooms to twice the table's cell, 14 to 48 px, at most 340 px tall", () => {
    expect(zoomGeometry(2, 2, 700)).toEqual({ cell: 14, rows: 24, cols: 50 });
    expect(zoomGeometry(10, 3, 700)).toEqual({ cell: 20, rows: 17, cols: 35 });
    expect(zoomGeometry(24, 24, 700)).toEqual({ cell: 48, rows: 7, cols: 14 });
  });
  it("centres zoom windows and clamps them to the picture", () => {
    expect(zoomWindow(50, 50, 100, 100, 20, 30)).toEqual({ r0: 40, c0: 35, nr: 20, nc: 30 });
    expect(zoomWindow(1, 99, 100, 100, 20, 30)).toEqual({ r0: 0, c0: 70, nr: 20, nc: 30 });
    expect(zoomWindow(3, 3, 8, 5, 20, 30)).toEqual({ r0: 0, c0: 0, nr: 8, nc: 5 });
  });
});

describe("max-|w| downsampling", () => {
  const values = Float32Array.from([1, -5, 2, NaN, 3, 4, -1, 0, 0.5, 9, -9, 2]);
  const pic = { values, index: Int32Array.from(values, (v, i) => (Number.isNaN(v) ? -1 : i)), rows: 3, cols: 4 };
  it("keeps each window's largest magnitude with its sign and index (first wins a tie)", () => {
    const d = downsample(pic, 2, 2);
    expect([d.rows, d.cols]).toEqual([2, 2]);
    expect(Array.from(d.values)).toEqual([-5, 2, 9, -9]);
    expect(Array.from(d.index)).toEqual([1, 2, 9, 10]);
  });
  it("leaves blank-only windows blank and crops regions", () => {
    const blank = { values: Float32Array.from([NaN, 1]), index: Int32Array.from([-1, 1]), rows: 1, cols: 2 };
    const d = downsample(blank, 1, 1);
    expect(d).toBe(blank);
    const c = downsample({ ...blank, cols: 2 }, 1, 2);
    expect(Array.from(c.values)).toEqual([1]);
    const r = crop(pic, 1, 1, 2, 2);
    expect(Array.from(r.values)).toEqual([4, -1, 9, -9]);
    expect(Array.from(r.index)).toEqual([5, 6, 9, 10]);
  });
  it("says how many weights a cell stands for", () => {
    expect(downsampleNote([1, 1])).toBe("");
    expect(downsampleNote([2, 3])).toBe("1 cell = 2×3 weights, max |w|");
  });
});

describe("equations as MathML", () => {
  it("parses subscripts, grouped subscripts, functions and implicit products", () => {
    const tree = parseMath("i_t = σ(W_ii x_t + b_ii + W_hi h_{t−1} + b_hi)");
    expect(text(tree)).toBe("i_{t}=σ(W_{ii} x_{t}+b_{ii}+W_{hi} h_{t−1}+b_{hi})");
    const [lhs] = tree.children!;
    expect(lhs.tag).toBe("msub");
    const grouped = parseMath("h_{t−1}").children![0];
    expect(grouped.children![1].children!.map((n) => n.tag)).toEqual(["mi", "mo", "mn"]);
    const fn = parseMath("h_t = o_t ⊙ tanh(c_t)").children!.find((n) => n.text === "tanh");
    expect(fn?.attrs?.mathvariant).toBe("normal");
    expect(parseMath("c̃_t").children![0].children![0]).toEqual({ tag: "mi", text: "c̃" });
  });
  it("finds symbols in prose without cutting words", () => {
    const parts = proseParts("W_i* = input kernel (weight_ih), b_h* = bias");
    expect(parts).toEqual([
      { math: true, text: "W_i*" },
      { math: false, text: " = input kernel (weight_ih), " },
      { math: true, text: "b_h*" },
      { math: false, text: " = bias" },
    ]);
  });
});

describe("column heads", () => {
  it("describe filter grids, vectors and matrices", () => {
    expect(pictureCaption("filters", [16, 3, 3, 3], ["filters", "input channels", "kernel row", "kernel column"], 63, 11, "")).toBe(
      "16 filters × 3 channels · 3×3 tiles",
    );
    expect(pictureCaption("filters", [5, 5, 1, 8], ["kernel row", "kernel column", "input channels", "filters"], 47, 5, "")).toBe(
      "8 filters × 1 channels · 5×5 tiles",
    );
    expect(pictureCaption("column", [64], ["unit"], 64, 1, "")).toBe("64");
    expect(pictureCaption("matrix", [8, 64], ["input features", "units"], 64, 8, "input features")).toBe("64×8 · input features");
  });
});
