import { describe, expect, it } from "vitest";
import { cacheCapacity, missingOf, pagesFor, paintInput, paintMap, thumbSize, ThumbCache, unpackPage, upscale, type Thumb } from "../src/thumbs";

const thumb = (pred: number): Thumb => ({ map: new Uint8Array(4), input: null, pred, truth: null });

describe("ThumbCache", () => {
  it("keeps the most recently used thumbnails up to its capacity", () => {
    const cache = new ThumbCache(2);
    cache.set(1, thumb(1));
    cache.set(2, thumb(2));
    cache.get(1); // 1 is now the most recent
    cache.set(3, thumb(3));
    expect([cache.has(1), cache.has(2), cache.has(3)]).toEqual([true, false, true]);
    expect(cache.size).toBe(2);
    cache.clear();
    expect(cache.size).toBe(0);
  });

  it("sizes itself by bytes, within bounds", () => {
    expect(cacheCapacity({ rows: 8, cols: 8, channels: 1 })).toBe(50_000);
    expect(cacheCapacity({ rows: 64, cols: 64, channels: 3 }, 24 << 20)).toBe(Math.floor((24 << 20) / (64 * 64 * 4 + 160)));
    expect(cacheCapacity({ rows: 64, cols: 64, channels: 3 }, 1024)).toBe(512);
  });
});

describe("pages", () => {
  it("lists the pages overlapping a range of positions", () => {
    expect(pagesFor(0, 10, 64, 1000)).toEqual([0]);
    expect(pagesFor(60, 130, 64, 1000)).toEqual([0, 1, 2]);
    expect(pagesFor(-64, 10, 64, 1000)).toEqual([0]);
    expect(pagesFor(990, 1100, 64, 1000)).toEqual([15]);
    expect(pagesFor(0, 0, 64, 0)).toEqual([]);
  });

  it("asks only for the samples of a page it does not know", () => {
    const shown = [5, 9, 2, 7, 1];
    expect(missingOf(shown, 0, 2, (i) => i === 9)).toEqual([5]);
    expect(missingOf(shown, 2, 2, () => false)).toEqual([1]);
  });

  it("unpacks a page into one thumbnail per sample, owning its bytes", () => {
    const maps = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const inputs = Uint8Array.from([9, 10, 11, 12, 13, 14, 15, 16]);
    const out = unpackPage({ indices: [40, 3], key: "all|2", pred: [1, 0], true: [1, 1] }, maps, inputs, { rows: 2, cols: 2, channels: 1 });
    expect(out.map(([i]) => i)).toEqual([40, 3]);
    expect(Array.from(out[1][1].map)).toEqual([5, 6, 7, 8]);
    expect(Array.from(out[1][1].input as Uint8Array)).toEqual([13, 14, 15, 16]);
    expect(out[1][1].truth).toBe(1);
    expect(out[0][1].map.buffer).not.toBe(maps.buffer);
  });
});

describe("pixels", () => {
  it("colours map cells through the LUT and repeats grey inputs", () => {
    const lut = new Uint8Array(1024);
    lut.set([10, 20, 30, 255], 4 * 7);
    const out = new Uint8ClampedArray(4);
    paintMap(Uint8Array.from([7]), lut, out);
    expect(Array.from(out)).toEqual([10, 20, 30, 255]);
    paintInput(Uint8Array.from([99]), 1, out);
    expect(Array.from(out)).toEqual([99, 99, 99, 255]);
    paintInput(Uint8Array.from([1, 2, 3]), 3, out);
    expect(Array.from(out)).toEqual([1, 2, 3, 255]);
  });

  it("zooms small grids by an integer and gives strips a fixed width", () => {
    expect(thumbSize({ rows: 8, cols: 8, channels: 1 }, true)).toEqual({ width: 64, height: 64 });
    expect(thumbSize({ rows: 28, cols: 28, channels: 1 }, true)).toEqual({ width: 56, height: 56 });
    expect(thumbSize({ rows: 1, cols: 13, channels: 1 }, false)).toEqual({ width: 168, height: 14 });
    expect(thumbSize({ rows: 3, cols: 40, channels: 1 }, false)).toEqual({ width: 160, height: 30 }); // features × time
  });

  it("resamples nearest-neighbour", () => {
    const src = { width: 2, height: 1, data: Uint8ClampedArray.from([1, 1, 1, 1, 2, 2, 2, 2]) } as ImageData;
    const out = { width: 4, height: 2, data: new Uint8ClampedArray(32) } as ImageData;
    upscale(src, out);
    expect(Array.from(out.data.filter((_, k) => k % 4 === 0))).toEqual([1, 1, 2, 2, 1, 1, 2, 2]);
  });
});
