import { describe, expect, it } from "vitest";
import { labelStride, orderRows, visibleRange, windowAround } from "../src/rows";
import { stepKey } from "../src/bars";
import { barValue, listedFeatures } from "../src/mapview";

describe("rows of long output lists", () => {
  const scores = [0.1, 0.9, -0.5, 0.3, 0.7];
  const labels = ["cat", "dog", "car", "cow", "ship"];
  const rows = [0, 1, 2, 3, 4];
  it("filters, keeps the top k and sorts by score", () => {
    expect(orderRows(rows, scores, labels, { query: "", sort: "index", top: 0 })).toEqual(rows);
    expect(orderRows(rows, scores, labels, { query: "c", sort: "index", top: 0 })).toEqual([0, 2, 3]);
    expect(orderRows(rows, scores, labels, { query: "", sort: "score", top: 0 })).toEqual([1, 4, 3, 0, 2]);
    expect(orderRows(rows, scores, labels, { query: "", sort: "index", top: 2 })).toEqual([1, 4]);
    expect(orderRows(rows, scores, labels, { query: "c", sort: "score", top: 3 })).toEqual([3]);
    expect(orderRows([4, 2], scores, labels, { query: "", sort: "score", top: 0 })).toEqual([4, 2]);
  });
  it("centres a window on a key, clamped at the ends", () => {
    const list = Array.from({ length: 100 }, (_, i) => i);
    expect(windowAround(list, 50, 5)).toEqual([48, 49, 50, 51, 52]);
    expect(windowAround(list, 1, 5)).toEqual([0, 1, 2, 3, 4]);
    expect(windowAround(list, 99, 5)).toEqual([95, 96, 97, 98, 99]);
    expect(windowAround([3, 4], 4, 5)).toEqual([3, 4]);
  });
  it("draws only the rows in view", () => {
    expect(visibleRange(0, 420, 14, 1000, 0)).toEqual([0, 30]);
    expect(visibleRange(7000, 420, 14, 1000, 4)).toEqual([496, 534]);
    expect(visibleRange(0, 420, 14, 5, 4)).toEqual([0, 5]);
  });
  it("spaces labels so they cannot collide", () => {
    expect(labelStride(9, 14)).toBe(2);
    expect(labelStride(28, 14)).toBe(1);
    expect(labelStride(0.5, 14)).toBe(28);
  });
  it("moves through a list with arrow keys", () => {
    expect(stepKey("ArrowDown", 2, 5)).toBe(3);
    expect(stepKey("ArrowUp", 0, 5)).toBe(0);
    expect(stepKey("End", 0, 5)).toBe(4);
    expect(stepKey("a", 0, 5)).toBeNull();
  });
  it("lists features in input order up to 48, else by strength, with bars in the sign mode", () => {
    expect(listedFeatures([0.1, -0.3, 0.2], "all")).toEqual([0, 1, 2]);
    const many = Array.from({ length: 60 }, (_, i) => (i === 7 ? -5 : i === 9 ? 4 : 0.01 * i));
    expect(listedFeatures(many, "all").slice(0, 2)).toEqual([7, 9]);
    expect(listedFeatures(many, "positive").slice(0, 2)).toEqual([9, 59]);
    expect([barValue(-2, "all"), barValue(-2, "negative"), barValue(2, "negative"), barValue(-2, "absolute_value")]).toEqual([-2, 2, 0, 2]);
  });
});
