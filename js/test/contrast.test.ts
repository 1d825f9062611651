import { describe, expect, it } from "vitest";
import { localAttribution } from "../src/attribution";
import type { AnyModel } from "../src/model";
import { answersCurrent, currentAttribution, currentRequest } from "../src/saliency_map";

function fakeModel(state: Record<string, unknown>): AnyModel {
  return { get: (k) => state[k], set: (k, v) => void (state[k] = v), on() {}, off() {}, save_changes() {}, send() {} };
}
const VECTOR = { kind: "vector" as const, sample_shape: [3], display_shape: [3], channel_axis: null };
const jac = new Float32Array([1, 2, 3, 4, 5, 6, 0.1, 0.2, 0.3]); // 3 outputs × 3 inputs

describe("contrast: the map of score(target) − score(contrast)", () => {
  it("is the difference of two Jacobian rows (times the input for input×gradient)", () => {
    expect(Array.from(localAttribution(jac, 3, 1, "gradient", [0, 0, 0], 0))).toEqual([3, 3, 3]);
    expect(Array.from(localAttribution(jac, 3, 0, "input_x_gradient", [2, -1, 0.5], 1))).toEqual([-6, 3, -1.5]);
    const rounded = localAttribution(jac, 3, 2, "gradient", [0, 0, 0], 0);
    expect(Array.from(rounded)).toEqual([0.1, 0.2, 0.3].map((v, i) => Math.fround(Math.fround(v) - (i + 1))));
  });

  it("is derived from the prefetched Jacobian in the browser", () => {
    const model = fakeModel({
      target: 1, contrast: 2, index: 0, method: "gradient", output: "logits", cam_layer: "", _request: 4,
      _local_methods: ["gradient"], _attribution: null,
      _jacobian: { data: jac.buffer, shape: [3, 3], dtype: "float32", index: 0, output: "logits" },
      _input: { data: new Float32Array([1, 1, 1]).buffer, shape: [3], dtype: "float32", index: 0 },
    });
    expect(currentRequest(model).contrast).toBe(2);
    expect(Array.from(currentAttribution(model, VECTOR)?.values ?? [])).toEqual(Array.from(localAttribution(jac, 3, 1, "gradient", [], 2)));
  });

  it("takes only a kernel reply for the same contrast", () => {
    const key = { target: 1, index: 0, method: "smoothgrad", output: "logits", cam_layer: "", request: 2 };
    const state = { ...key, _request: 2, _local_methods: ["gradient"], _jacobian: null, _input: null };
    expect(answersCurrent({ ...key, contrast: null }, fakeModel({ ...state, contrast: null }))).toBe(true);
    expect(answersCurrent({ ...key, contrast: 0 }, fakeModel({ ...state, contrast: 0 }))).toBe(true);
    expect(answersCurrent({ ...key, contrast: 0 }, fakeModel({ ...state, contrast: null }))).toBe(false);
    expect(answersCurrent({ ...key, contrast: null }, fakeModel({ ...state, contrast: 2 }))).toBe(false);
    expect(answersCurrent({ ...key, contrast: 0 }, fakeModel({ ...state, contrast: 2 }))).toBe(false);
  });
});
