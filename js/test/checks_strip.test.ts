import { describe, expect, it } from "vitest";
import { sparkPoints } from "../src/checks_strip";

describe("checks strip sparkline", () => {
  it("spans the box: first fraction at x = 0, last at the width, lowest value at the bottom", () => {
    const pts = sparkPoints([0, 0.5, 1], [2, 1, 0], 0, 2, 100, 20).split(" ").map((p) => p.split(",").map(Number));
    expect(pts).toEqual([[0, 2], [50, 10], [100, 18]]);
  });
  it("draws a flat curve (a zero range) along the bottom without dividing by zero", () => {
    const pts = sparkPoints([0, 1], [3, 3], 3, 3, 10, 20).split(" ").map((p) => p.split(",").map(Number));
    expect(pts).toEqual([[0, 18], [10, 18]]);
  });
});
