import { describe, expect, it } from "vitest";
import { columnLabelPlan, SLANT } from "../src/layout";
import { faintUnderlay, UNDERLAY } from "../src/grid_views";

describe("column labels of the Jacobian matrix", () => {
  it("stay flat when every label fits its column", () => {
    expect(columnLabelPlan(28, 14, 14, 120)).toEqual({ angle: 0, stride: 1, height: 18 });
  });
  it("slant when flat labels would need thinning, never closer than a line across the slant", () => {
    for (const cell of [0.5, 2, 8, 12, 19, 27]) {
      const plan = columnLabelPlan(cell, 100, 14, 120);
      expect(plan.angle).toBe(SLANT);
      expect(cell * plan.stride * Math.sin((SLANT * Math.PI) / 180)).toBeGreaterThanOrEqual(14);
      expect(cell * (plan.stride - 1) * Math.sin((SLANT * Math.PI) / 180)).toBeLessThan(14); // no thinner than needed
    }
  });
  it("reserve the height of the longest label drawn, cut at the maximum length", () => {
    const short = columnLabelPlan(8, 60, 14, 120);
    const long = columnLabelPlan(8, 400, 14, 120);
    expect(long.height).toBeGreaterThan(short.height);
    expect(long.height).toBe(Math.ceil(120 * Math.SQRT1_2 + 14 * Math.SQRT1_2) + 6);
  });
  it("thin flat labels out when slanting would not show more of them", () => {
    const plan = columnLabelPlan(10, 12, 14, 120); // "12" needs 18 px: every second column flat, as slanted
    expect(plan).toEqual({ angle: 0, stride: 2, height: 18 });
  });
});

describe("faint underlay of image tiles", () => {
  it("maps black and white onto the pale ends and keeps the order of greys", () => {
    const rgb = new Uint8Array([0, 0, 0, 255, 255, 255, 128, 128, 128, 200, 10, 10]);
    const grey = Array.from(faintUnderlay(rgb, 3));
    expect(grey[0]).toBe(UNDERLAY[0]);
    expect(grey[1]).toBe(UNDERLAY[1]);
    expect(grey[2]).toBeGreaterThan(grey[0]);
    expect(grey[2]).toBeLessThan(grey[1]);
    // saliency_widgets.export.faint_underlay(np.array([[[128]*3, [200, 10, 10]]], np.uint8)) == [[225, 213]]
    expect(grey.slice(2)).toEqual([225, 213]);
  });
});
