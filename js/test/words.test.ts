import { describe, expect, it } from "vitest";
import { colorbarTicks, scaleCaption } from "../src/colorbar";
import { fitCell } from "../src/layout";
import { signalPoints } from "../src/signal";
import { pushes, pushesText, scaleRange, signedValue, targetLegend } from "../src/words";

describe("words beside the colours (export.py's pushes_text, target_legend, scale_range)", () => {
  it("lists the largest positive and most negative entries, ties in index order, NaN as 0", () => {
    const v = [0.2, -0.5, NaN, 0.84, -0.5, 0.2, 0];
    expect(pushes(v, 2)).toEqual({ up: [3, 0], down: [1, 4] });
    const names = ["a", "b", "c", "proline", "e", "f", "g"];
    expect(pushesText(v, names, "“class_0”", 2)).toEqual([
      "pushes “class_0” up: proline +0.84, a +0.2, …",
      "down: b −0.5, e −0.5",
    ]);
    expect(pushesText([1, 2], ["x", "y"], "“c”")[1]).toBe("down: nothing");
    expect(signedValue(-0.00012)).toBe("−1.2e-4");
  });

  it("names the explained output in the colour bar, by sign, and each map's own range", () => {
    expect(targetLegend("all", "“cat” vs “dog”")).toBe("“cat” vs “dog”: red raises it, blue lowers it");
    expect(targetLegend("absolute_value", "“cat”")).toBe("“cat”: what moves it either way");
    expect(scaleRange("all", 0.5)).toBe("±0.5");
    expect(scaleRange("negative", 0.5)).toBe("0 … -0.5");
    expect(colorbarTicks("all", 2, true).map((t) => [t.at, t.text])).toEqual([[0, "−max"], [0.5, "0"], [1, "max"]]);
    expect(scaleCaption({ sign: "all", outlierPerc: 2, locked: false, target: "“cat”: red raises it, blue lowers it", relative: true }))
      .toBe("“cat”: red raises it, blue lowers it · each map on its own scale (its range in its caption) · signed (red +, blue −) · top 2% clipped");
  });
});

describe("fitCell: maps grow with the room, crisp while cells are whole pixels", () => {
  it("keeps an 8×8 digit on whole pixels and lets a 224² photo fill the room smoothly", () => {
    expect(fitCell(8, 8, 440, 640)).toEqual({ cell: 55, crisp: true });
    expect(fitCell(224, 224, 640, 640)).toEqual({ cell: 640 / 224, crisp: false });
    expect(fitCell(224, 224, 450, 640)).toEqual({ cell: 2, crisp: true }); // 2.01: nearly a whole factor
    expect(fitCell(224, 224, 138, 640).cell).toBeCloseTo(138 / 224);
  });
});

describe("signalPoints", () => {
  it("puts each time step over its map column, from the lowest value at the bottom to the highest at the top", () => {
    const signal = [0, 10, 1, 20]; // (T=2, F=2), time first
    expect(signalPoints(signal, 2, 2, 0, 100, 30, 0, 1)).toBe("25.0,27.0 75.0,3.0");
  });
});
