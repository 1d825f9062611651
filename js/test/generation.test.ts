import { describe, expect, it } from "vitest";
import {
  causalLimit, chipOf, clickSelection, decodeView, shownRows, spanRow, targetLabel, titleOf, tokensOf, usableCells, type GenInfo, type GenView,
} from "../src/generation";
import { shownToken } from "../src/textview";

// prompt "The capital is" (3 tokens), generated " Par" "is" "." " Yes" (4): words " Paris" "." " Yes"
const P = 3;
const tokenView = (): GenView => {
  const cols = 7;
  const matrix = new Float32Array(4 * cols);
  for (let k = 0; k < 4; k++) for (let j = 0; j < P + k; j++) matrix[k * cols + j] = 10 * (k + 1) + j;
  return { tokens: ["The", " capital", " is", " Par", "is", ".", " Yes"], prompt_length: P, matrix, scores: new Float32Array([-1, -2, -3, -4]), probabilities: new Float32Array([0.5, 0.4, 0.3, 0.2]), groups: null };
};
const wordView = (): GenView => {
  const t = tokenView();
  const groups = [[0], [1], [2], [3, 4], [5], [6]];
  const cols = groups.length;
  const rows = [[0, 1], [2], [3]];
  const matrix = new Float32Array(3 * cols);
  rows.forEach((members, g) => groups.forEach((cells, c) => {
    for (const k of members) for (const j of cells) matrix[g * cols + c] += t.matrix[k * 7 + j];
  }));
  return { tokens: ["The", " capital", " is", " Paris", ".", " Yes"], prompt_length: P, matrix, scores: new Float32Array(3), probabilities: new Float32Array(3), groups };
};
const info = (over: Partial<GenInfo> = {}): GenInfo => ({ method: "input_x_gradient", target: "log_prob", contrast: null, contrast_tokens: [], layer: "", completeness_error: null, notes: [], ...over });

describe("generation selections", () => {
  it("sums the rows of a span exactly", () => {
    const v = tokenView();
    expect(Array.from(spanRow(v.matrix, 7, 1, 3))).toEqual([20 + 30, 21 + 31, 22 + 32, 23 + 33, 34, 0, 0]);
    expect(Array.from(spanRow(v.matrix, 7, 2, 3))).toEqual([30, 31, 32, 33, 34, 0, 0]);
  });

  it("maps token selections onto the chips of a grouping", () => {
    const w = wordView();
    expect(chipOf(w, 4)).toBe(3);
    expect(tokensOf(w, P, 0)).toEqual([0, 2]);
    expect(shownRows(w, P, { selected: 1, span: null })).toEqual([0, 1]);
    expect(shownRows(w, P, { selected: 3, span: [1, 3] })).toEqual([0, 2]);
    expect(shownRows(tokenView(), P, { selected: 3, span: [1, 3] })).toEqual([1, 3]);
  });

  it("leaves unfilled the chips that cannot have caused the explained rows", () => {
    expect(causalLimit(tokenView(), 1)).toBe(3);
    expect(causalLimit(tokenView(), 4)).toBe(6);
    expect(causalLimit(wordView(), 1)).toBe(4); // " Paris" holds " Par", which made "is"
    expect(causalLimit(wordView(), 2)).toBe(4);
    expect(causalLimit(wordView(), 3)).toBe(5);
    expect(Array.from(usableCells(wordView())).length).toBe(4 + 4 + 5);
  });

  it("clicks select a chip, shift-clicks extend a span from the selection", () => {
    const v = tokenView();
    expect(clickSelection(v, P, { selected: 3, span: null }, 1, false)).toEqual({ selected: 1, span: null });
    expect(clickSelection(v, P, { selected: 1, span: null }, 3, true)).toEqual({ selected: 1, span: [1, 4] });
    expect(clickSelection(v, P, { selected: 3, span: null }, 0, true)).toEqual({ selected: 3, span: [0, 4] });
    expect(clickSelection(v, P, { selected: 2, span: null }, 2, true)).toEqual({ selected: 2, span: null });
    const w = wordView();
    expect(clickSelection(w, P, { selected: 3, span: null }, 0, false)).toEqual({ selected: 1, span: [0, 2] });
    expect(clickSelection(w, P, { selected: 3, span: null }, 1, true)).toEqual({ selected: 3, span: [2, 4] });
  });

  it("labels what the colour bar explains, as figure.py does", () => {
    const v = tokenView();
    expect(targetLabel(v, info(), P, 0, 1)).toBe("log p(' Par')");
    expect(targetLabel(v, info({ contrast_tokens: Array(4).fill(" London") }), P, 0, 2)).toBe("log p(' Paris') − log p(' London')");
    expect(targetLabel(v, info({ target: "logit" }), P, 1, 3)).toBe("Σ logit over 'is.'");
    expect(targetLabel(wordView(), info({ target: "probability", contrast_tokens: [" a", " b", " b", " b"] }), P, 1, 3)).toBe("Σ [p − p(' b')] over '. Yes'");
    expect(targetLabel(wordView(), info({ target: "probability", contrast_tokens: [" a", " b", " b", " b"] }), P, 0, 1)).toBe("Σ [p − p(contrast)] over ' Paris'");
    expect(titleOf(wordView(), "word", 0, 2)).toBe("Explaining ' Paris.' (generated words 1–2 of 3)");
    expect(shownToken(".\r\n\tx")).toBe(".↵⇥x");
  });

  it("decodes the kernel's wire views", () => {
    const f32 = (a: number[]) => ({ data: new Float32Array(a).buffer, shape: [a.length], dtype: "float32" });
    const v = decodeView({ tokens: ["a", "b"], prompt_length: 1, matrix: { ...f32([1, 0]), shape: [1, 2] }, scores: f32([-1]), probabilities: f32([0.5]), groups: null });
    expect(Array.from(v.matrix)).toEqual([1, 0]);
    expect(v.groups).toBeNull();
  });
});
