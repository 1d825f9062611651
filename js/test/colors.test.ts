import { describe, expect, it } from "vitest";
import { colorize, greyscale, overlayAlpha, percentileSorted, scaleMax, shownSign, signTransform, toIndex, valueRange } from "../src/colors";
import { colorbarTicks, scaleCaption } from "../src/colorbar";
import { localAttribution, reduceChannels } from "../src/attribution";

// Reference numbers computed with saliency_widgets/colors.py (numpy), see tests/test_widgets_colors.py.
const VALUES = [-3, -1.5, -0.25, 0, 0.1, 0.5, 2, 4, NaN, 1e-3];

describe("normalization rule (mirrors colors.py)", () => {
  it("transforms by sign", () => {
    expect(signTransform(-2, "all")).toBe(-2);
    expect(signTransform(-2, "positive")).toBe(0);
    expect(signTransform(-2, "negative")).toBe(2);
    expect(signTransform(-2, "absolute_value")).toBe(2);
    expect(signTransform(NaN, "all")).toBe(0);
  });

  it("computes numpy's linear percentile", () => {
    const sorted = [0, 1, 2, 10];
    expect(percentileSorted(sorted, 50)).toBeCloseTo(1.5, 12);
    expect(percentileSorted(sorted, 98)).toBe(9.52);
    expect(percentileSorted(sorted, 100)).toBe(10);
    expect(percentileSorted([5], 98)).toBe(5);
  });

  it("matches the Python scale for each sign", () => {
    // np.percentile(|t|, 98) per sign, computed in float64
    expect(scaleMax(VALUES, "all", 2)).toBe(3.8200000000000003);
    expect(scaleMax(VALUES, "positive", 2)).toBe(3.6400000000000006);
    expect(scaleMax(VALUES, "negative", 2)).toBe(2.7300000000000004);
    expect(scaleMax(VALUES, "absolute_value", 2)).toBe(3.8200000000000003);
    expect(scaleMax(VALUES, "all", 0)).toBe(4);
  });

  it("falls back when the percentile is zero", () => {
    const mostlyZero = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    expect(scaleMax(mostlyZero, "all", 2)).toBe(7);
    expect(scaleMax([0, 0], "all", 2)).toBe(1);
  });

  it("maps values to LUT indices like Python", () => {
    // colors.to_index(VALUES, sign, 2.0)
    expect(VALUES.map((v) => toIndex(v, "all", 2))).toEqual([0, 32, 112, 128, 134, 159, 255, 255, 128, 128]);
    expect(VALUES.map((v) => toIndex(v, "negative", 2))).toEqual([255, 191, 32, 0, 0, 0, 0, 0, 0, 0]);
    expect(valueRange(2, "all")).toEqual([-2, 2]);
    expect(valueRange(2, "absolute_value")).toEqual([0, 2]);
  });

  it("colourises through the LUT, with overlay alpha", () => {
    const lut = new Uint8Array(1024);
    for (let i = 0; i < 256; i++) lut.set([i, 255 - i, 7, 255], 4 * i);
    const out = new Uint8ClampedArray(8);
    colorize([-2, 2], "all", 2, lut, out);
    expect(Array.from(out)).toEqual([0, 255, 7, 255, 255, 0, 7, 255]);
    colorize([0, 2], "all", 2, lut, out, true);
    expect([out[3], out[7]]).toEqual([overlayAlpha(128, "all"), 255]);
    expect(overlayAlpha(128, "all")).toBe(1);
    expect(overlayAlpha(0, "positive")).toBe(0);
  });

  it("greys pictures by luminance", () => {
    expect(Array.from(greyscale(new Uint8Array([255, 0, 0, 10, 20, 30, 0, 0, 0, 255, 255, 255]), 3))).toEqual([65, 40, 32, 144]);
  });
});

describe("one-sided scale of maps that are ≥ 0 by construction (shown_sign in colors.py)", () => {
  const CAM = [0, 0.5, 1, 2, 4]; // a Grad-CAM map: ≥ 0 by construction
  it("draws a signed view of a non-negative map as 'positive', any other view as asked", () => {
    expect(shownSign("all", true)).toBe("positive");
    for (const sign of ["positive", "negative", "absolute_value"] as const) expect(shownSign(sign, true)).toBe(sign);
    expect(shownSign("all", false)).toBe("all");
  });
  it("spans the whole colour map from 0 to the maximum, where the diverging scale would use its upper half", () => {
    const sign = shownSign("all", true);
    expect(CAM.map((v) => toIndex(v, sign, 4))).toEqual([0, 32, 64, 128, 255]);
    expect(CAM.map((v) => toIndex(v, "all", 4))).toEqual([128, 143, 159, 191, 255]);
    expect(scaleMax(CAM, sign, 0)).toBe(scaleMax(CAM, "all", 0)); // the same magnitude saturates
    expect(overlayAlpha(toIndex(0, sign, 4), sign)).toBe(0); // nothing over the image where the map is 0
  });
  it("labels the colour bar 0 … max and says why it is one-sided", () => {
    expect(colorbarTicks("positive", 4)).toEqual([{ at: 0, text: "0" }, { at: 1, text: "4" }]);
    expect(scaleCaption({ sign: "positive", outlierPerc: 2, locked: false, nonnegative: true })).toBe("one-sided: ≥ 0 by construction · top 2% clipped");
    expect(scaleCaption({ sign: "positive", outlierPerc: 2, locked: false })).toBe("positive part · top 2% clipped");
    expect(scaleCaption({ sign: "absolute_value", outlierPerc: 0, locked: true })).toBe("absolute value · scale locked");
  });
});

describe("local attribution from a Jacobian", () => {
  const jac = new Float32Array([1, 2, 3, 4, 5, 6]); // 2 outputs × 3 inputs
  it("takes a row for the gradient and multiplies by the input for input×gradient", () => {
    expect(Array.from(localAttribution(jac, 3, 1, "gradient", [0, 0, 0]))).toEqual([4, 5, 6]);
    expect(Array.from(localAttribution(jac, 3, 0, "input_x_gradient", [2, -1, 0.5]))).toEqual([2, -2, 1.5]);
  });
  it("sums channels first (C,H,W) and last (H,W,C)", () => {
    const chw = new Float32Array([1, 2, 3, 4, 10, 20, 30, 40]); // C=2, H=2, W=2
    expect(Array.from(reduceChannels(chw, [2, 2, 2], 0))).toEqual([11, 22, 33, 44]);
    const hwc = new Float32Array([1, 10, 2, 20, 3, 30, 4, 40]);
    expect(Array.from(reduceChannels(hwc, [2, 2, 2], 2))).toEqual([11, 22, 33, 44]);
    expect(reduceChannels(hwc, [8], null)).toBe(hwc);
  });
});
