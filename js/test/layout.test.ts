import { describe, expect, it } from "vitest";
import { cellAt, cellSize, gridColumns } from "../src/layout";
import { barSpan, searchLabels, topK } from "../src/ranking";
import { listedOutputs } from "../src/bars";
import { colorbarTicks, scaleCaption } from "../src/colorbar";
import { formatValue } from "../src/format";
import { mapGrid } from "../src/mapview";
import { column } from "../src/jacobian_grid";

describe("layout", () => {
  it("sizes cells to fit, integer when enlarging", () => {
    expect(cellSize(28, 28, 320, 320, 0.5, 12)).toBe(11);
    expect(cellSize(224, 224, 320, 320, 0.5, 12)).toBe(1);
    expect(cellSize(1, 2000, 560, 28, 0.25, 40)).toBeCloseTo(0.28, 10);
    expect(cellSize(1, 4, 560, 28, 0.25, 40)).toBe(28);
  });
  it("hit-tests cells", () => {
    expect(cellAt(0, 0, 100, 50, 2, 4)).toEqual({ row: 0, col: 0 });
    expect(cellAt(99.9, 49.9, 100, 50, 2, 4)).toEqual({ row: 1, col: 3 });
    expect(cellAt(30, 26, 100, 50, 2, 4)).toEqual({ row: 1, col: 1 });
    expect(cellAt(100, 10, 100, 50, 2, 4)).toBeNull();
    expect(cellAt(-1, 10, 100, 50, 2, 4)).toBeNull();
  });
  it("lays out grids and sequences", () => {
    expect(gridColumns(100, 10)).toBe(10);
    expect(gridColumns(10, 10)).toBe(4);
    expect(gridColumns(1, 10)).toBe(1);
    const seq = mapGrid({ kind: "sequence", sample_shape: [3, 2], display_shape: [3, 2], channel_axis: null });
    expect([seq.rows, seq.cols]).toEqual([2, 3]);
    // pixel (feature 1, time 2) shows value index 2 * 2 + 1
    expect(seq.at!(1 * 3 + 2)).toBe(5);
    expect(mapGrid({ kind: "vector", sample_shape: [7], display_shape: [7], channel_axis: null })).toEqual({ rows: 1, cols: 7 });
    expect(column([1, 2, 3, 4, 5, 6], 2, 3, 1)).toEqual([2, 5]);
  });
});

describe("ranking outputs", () => {
  it("takes the top k, ties by index", () => {
    expect(topK([0.1, 0.5, 0.5, -1, 2], 3)).toEqual([4, 1, 2]);
  });
  it("searches labels and indices, case-insensitively", () => {
    const labels = ["tabby cat", "dog", "Siamese cat", "car"];
    expect(searchLabels(labels, "CAT", 10)).toEqual([0, 2]);
    expect(searchLabels(labels, "3", 10)).toEqual([3]);
    expect(searchLabels(labels, " ", 10)).toEqual([]);
  });
  it("always lists the selected output and can reach any of 1000", () => {
    const scores = Array.from({ length: 1000 }, (_, i) => i);
    const labels = scores.map((i) => `class ${i}`);
    expect(listedOutputs(scores, labels, 3, "", false)).toEqual([3, 999, 998, 997, 996, 995, 994, 993, 992, 991, 990]);
    expect(listedOutputs(scores, labels, 999, "", true)).toHaveLength(1000);
    expect(listedOutputs(scores, labels, 999, "class 12", false).slice(0, 3)).toEqual([999, 12, 120]);
    expect(listedOutputs([1, 2], ["a", "b"], 0, "zzz", false)).toEqual([0, 1]);
  });
  it("draws bars from zero", () => {
    expect(barSpan(2, -2, 2)).toEqual({ left: 0.5, width: 0.5 });
    expect(barSpan(-1, -2, 2)).toEqual({ left: 0.25, width: 0.25 });
    expect(barSpan(0.5, 0, 1)).toEqual({ left: 0, width: 0.5 });
  });
});

describe("legend text", () => {
  it("labels ticks in the attribution's units", () => {
    expect(colorbarTicks("all", 0.25).map((t) => t.text)).toEqual(["-0.25", "0", "0.25"]);
    expect(colorbarTicks("negative", 3).map((t) => t.text)).toEqual(["0", "-3"]);
    expect(scaleCaption({ sign: "positive", outlierPerc: 2, locked: false })).toBe("positive part · top 2% clipped");
    expect(scaleCaption({ sign: "all", outlierPerc: 2, locked: true })).toMatch(/scale locked/);
  });
  it("formats values compactly", () => {
    expect(formatValue(0.123456)).toBe("0.1235");
    expect(formatValue(1.5e-7)).toBe("1.5e-7");
    expect(formatValue(-123456)).toBe("-1.235e+5");
    expect(formatValue(0)).toBe("0");
  });
});

describe("theme", () => {
  it("reads light and dark backgrounds in every computed colour syntax", async () => {
    const { schemeOf } = await import("../src/style");
    expect(schemeOf("rgb(255, 255, 255)")).toBe("light");
    expect(schemeOf("rgb(17, 17, 17)")).toBe("dark");
    expect(schemeOf("rgba(0, 0, 0, 0)")).toBeNull();
    expect(schemeOf("color(srgb 0.1 0.12 0.15)")).toBe("dark");
    expect(schemeOf("color(srgb 0.9 0.9 0.92 / 0.5)")).toBe("light");
    expect(schemeOf("transparent")).toBeNull();
  });
});
