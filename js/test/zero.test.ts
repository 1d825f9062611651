import { describe, expect, it } from "vitest";
import { answersCurrent, currentAttribution } from "../src/saliency_map";
import type { AnyModel } from "../src/model";
import { SUM_RTOL, sumsAndMasses, zeroReason, zeroSentence } from "../src/zero";

/** The gradient a LayerNorm passes back to its input (rows of `dim`), rounded to float32: each row sums to 0 up to rounding. */
function layerNormGradient(rows: number, dim: number): Float32Array {
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const x = Array.from({ length: dim }, (_, i) => Math.sin(1.7 * i + r) * 2 + 0.3 * i);
    const g = Array.from({ length: dim }, (_, i) => Math.cos(0.9 * i * (r + 1)));
    const mu = x.reduce((a, b) => a + b, 0) / dim;
    const sd = Math.sqrt(x.reduce((a, b) => a + (b - mu) ** 2, 0) / dim);
    const xh = x.map((v) => (v - mu) / sd);
    const gm = g.reduce((a, b) => a + b, 0) / dim;
    const gx = g.reduce((a, b, i) => a + b * xh[i], 0) / dim;
    for (let i = 0; i < dim; i++) out[r * dim + i] = (g[i] - gm - xh[i] * gx) / sd;
  }
  return out;
}

const LAYERNORM = "the signed gradient summed over the embedding axis is 0 up to rounding: the embeddings feed a normalisation layer; use input × gradient";

describe("zero maps (the rule of saliency_widgets/zero.py)", () => {
  it("sums over an axis in float64, with the magnitude of the terms", () => {
    const [total, mass] = sumsAndMasses([1, -2, 3, 4, 5, -6], [2, 3], 1);
    expect(Array.from(total)).toEqual([2, 3]);
    expect(Array.from(mass)).toEqual([6, 15]);
  });
  it("calls a sum that cancels to rounding zero, with the LayerNorm reason", () => {
    const grad = layerNormGradient(5, 64);
    const [total, mass] = sumsAndMasses(grad, [5, 64], 1);
    expect(Math.max(...total.map(Math.abs))).toBeGreaterThan(0);
    expect(Math.max(...total.map((t, i) => Math.abs(t) / mass[i]))).toBeLessThan(1e-6);
    expect(zeroReason(grad, [5, 64], { method: "gradient", summedAxis: 1, axisName: "embedding" })).toBe(LAYERNORM);
    expect(zeroReason(grad, [5, 64], { method: "input_x_gradient", summedAxis: 1 })).toMatch(/its terms cancel; use integrated gradients$/);
  });
  it("leaves a map alone as soon as one shown cell means something", () => {
    const grad = layerNormGradient(5, 64);
    let mass = 0;
    for (let i = 0; i < 64; i++) mass += Math.abs(grad[2 * 64 + i]);
    grad[2 * 64] += 10 * SUM_RTOL * mass;
    expect(zeroReason(grad, [5, 64], { method: "gradient", summedAxis: 1 })).toBeNull();
    expect(zeroReason(grad, [5, 64], { method: "gradient", summedAxis: 1, shown: [true, true, false, true, true] })).toBe(LAYERNORM);
    expect(zeroReason(new Float32Array(6).fill(1e-12), [6], { method: "gradient" })).toBeNull(); // tiny, but not a sum
    expect(zeroReason([0, Number.NaN], [2], { method: "gradient" })).toBeNull();
  });
  it("names Grad-CAM's ReLU for an all-zero CAM, else says the map is exactly 0", () => {
    expect(zeroReason(new Float32Array(16), [4, 4], { method: "gradcam" })).toBe(
      "Grad-CAM's ReLU clipped every pixel: no location raises this score; try relu=False or another layer");
    expect(zeroReason(new Float32Array(16), [4, 4], { method: "gradcam", relu: false })).toMatch(/^the map is exactly 0 everywhere/);
    expect(zeroReason(new Float32Array(12), [3, 4], { method: "gradient", summedAxis: 0, axisName: "channel" })).toMatch(/^the map is exactly 0/);
  });
  it("says it as a sentence", () => {
    expect(zeroSentence("the map is exactly 0 everywhere: x")).toBe("Zero map. The map is exactly 0 everywhere: x.");
  });
});

/** A stand-in model holding `state` (wire arrays as { data: Float32Array buffer, shape, dtype, ...meta }). */
function fakeModel(state: Record<string, unknown>): AnyModel {
  return { get: (k) => state[k], set: (k, v) => void (state[k] = v), on() {}, off() {}, save_changes() {}, send() {} };
}
const wire = (values: number[], meta: Record<string, unknown>) => ({ data: new Float32Array(values).buffer, shape: [values.length], dtype: "float32", ...meta });
const VECTOR = { kind: "vector" as const, sample_shape: [3], display_shape: [3], channel_axis: null };

describe("the map on screen answers the latest request", () => {
  const state = () => ({ target: 1, index: 0, method: "integrated_gradients", output: "logits", cam_layer: "", _request: 3, _local_methods: ["gradient"], _jacobian: null, _input: null });
  const key = { target: 1, index: 0, method: "integrated_gradients", output: "logits", cam_layer: "", request: 3 };
  it("takes a reply whose every field is the current request", () => {
    const model = fakeModel({ ...state(), _attribution: wire([1, 2, 3], { ...key, completeness_error: 0.5, note: "" }) });
    expect(answersCurrent(key, model)).toBe(true);
    expect(currentAttribution(model, VECTOR)).toEqual({ values: new Float32Array([1, 2, 3]), completeness: 0.5, note: null, nonnegative: false });
  });
  it("carries the kernel's word that the map is ≥ 0 by construction", () => {
    const model = fakeModel({ ...state(), _attribution: wire([0, 1, 2], { ...key, nonnegative: true }) });
    expect(currentAttribution(model, VECTOR)?.nonnegative).toBe(true);
  });
  it("never draws an older request's reply, even one with the same key", () => {
    for (const stale of [{ request: 2 }, { target: 0 }, { method: "gradient" }, { cam_layer: "conv1" }, { index: 1 }, { output: "probabilities" }]) {
      const model = fakeModel({ ...state(), _attribution: wire([1, 2, 3], { ...key, ...stale }) });
      expect(currentAttribution(model, VECTOR)).toBeNull();
    }
  });
  it("carries the kernel's note", () => {
    const model = fakeModel({ ...state(), _attribution: wire([0, 0, 0], { ...key, note: "why" }) });
    expect(currentAttribution(model, VECTOR)?.note).toBe("why");
  });
  it("derives a zero note itself for a map made from the Jacobian", () => {
    const grad = layerNormGradient(2, 8);
    const text = { kind: "text" as const, sample_shape: [2, 8], display_shape: [2], channel_axis: 1 };
    const model = fakeModel({
      ...state(), method: "gradient", target: 0,
      _jacobian: { data: grad.buffer, shape: [1, 2, 8], dtype: "float32", index: 0, output: "logits" },
      _input: { data: new Float32Array(16).fill(1).buffer, shape: [2, 8], dtype: "float32", index: 0 },
      _tokens: { index: 0, tokens: ["a", "b"], hidden: [false, false] },
      _attribution: null,
    });
    expect(currentAttribution(model, text)?.note).toBe(LAYERNORM);
  });
});
