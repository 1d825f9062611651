import { describe, expect, it } from "vitest";
import { decode } from "../src/decode";

describe("decode", () => {
  it("reads a DataView with a byte offset", () => {
    const backing = new ArrayBuffer(4 + 3 * 4);
    new Float32Array(backing, 4, 3).set([1.5, -2, 3.25]);
    const view = new DataView(backing, 4, 12);
    expect(Array.from(decode({ data: view, shape: [3], dtype: "float32" }))).toEqual([1.5, -2, 3.25]);
  });

  it("copies when the offset is not aligned", () => {
    const backing = new ArrayBuffer(1 + 8);
    const src = new Float32Array([7, 8]);
    new Uint8Array(backing, 1, 8).set(new Uint8Array(src.buffer));
    const out = decode({ data: new DataView(backing, 1, 8), shape: [2], dtype: "float32" });
    expect(Array.from(out)).toEqual([7, 8]);
  });

  it("rejects a shape that does not match the bytes", () => {
    expect(() => decode({ data: new ArrayBuffer(8), shape: [3], dtype: "float32" })).toThrow(/needs 12 bytes/);
  });
});

describe("decode buffers", () => {
  it("reads a plain ArrayBuffer and uint8 data", () => {
    const buf = new Uint8Array([1, 2, 255]).buffer;
    expect(Array.from(decode({ data: buf, shape: [3], dtype: "uint8" }))).toEqual([1, 2, 255]);
  });
});
