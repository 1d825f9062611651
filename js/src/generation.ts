/**
 * What GenerationMap draws, as pure functions (mirrored in saliency_widgets/generation/figure.py and
 * widgets/generation_map.py): which rows a selection explains, their summed row, the first chip that
 * cannot have caused them, and the colour bar's label.
 *
 * `selected` and `span` count generated tokens at every granularity; a view (token, word or sentence)
 * draws the groups holding them. A view's `groups` lists each chip's token positions (null per token).
 */
import { decode, type WireArray } from "./decode";
import { shownToken } from "./textview";

export interface GenView {
  tokens: string[];
  /** Chips of the prompt (an encoder–decoder's encoder tokens), then the generated ones. */
  prompt_length: number;
  /** Generated × context, row-major: row k attributes generated chip k to every chip. */
  matrix: Float32Array;
  scores: Float32Array;
  probabilities: Float32Array;
  groups: number[][] | null;
}

export interface GenInfo {
  method: string;
  target: string;
  contrast: unknown;
  contrast_tokens: string[];
  layer: string;
  completeness_error: number | null;
  notes: string[];
}

/** A selection: the explained token and the span `[i, j)` of generated tokens, or null. */
export interface Selection {
  selected: number;
  span: [number, number] | null;
}

interface WireView {
  tokens: string[];
  prompt_length: number;
  matrix: WireArray;
  scores: WireArray;
  probabilities: WireArray;
  groups: number[][] | null;
}

/** One granularity as the kernel sends it, decoded. */
export function decodeView(wire: WireView): GenView {
  return {
    tokens: wire.tokens,
    prompt_length: wire.prompt_length,
    matrix: decode(wire.matrix) as Float32Array,
    scores: decode(wire.scores) as Float32Array,
    probabilities: decode(wire.probabilities) as Float32Array,
    groups: wire.groups ?? null,
  };
}

export const nGenerated = (v: GenView): number => v.tokens.length - v.prompt_length;

/** The chip (index into `tokens`) holding token position `pos`. */
export function chipOf(v: GenView, pos: number): number {
  if (!v.groups) return pos;
  const g = v.groups.findIndex((members) => members.includes(pos));
  return g < 0 ? v.tokens.length - 1 : g;
}

/** The generated tokens `[first, stop)` that generated chip `k` of view `v` holds (`prompt`: the token-level prompt length). */
export function tokensOf(v: GenView, prompt: number, k: number): [number, number] {
  if (!v.groups) return [k, k + 1];
  const members = v.groups[v.prompt_length + k];
  return [members[0] - prompt, members[members.length - 1] - prompt + 1];
}

/** The rows `[start, stop)` of view `v` a selection explains (`rows` in generation_map.py). */
export function shownRows(v: GenView, prompt: number, s: Selection): [number, number] {
  const [first, stop] = s.span ?? [s.selected, s.selected + 1];
  return [chipOf(v, prompt + first) - v.prompt_length, chipOf(v, prompt + stop - 1) - v.prompt_length + 1];
}

/** The first chip rows `< stop` never attribute to (`causal_limit` in figure.py). */
export function causalLimit(v: GenView, stop: number): number {
  if (!v.groups) return v.prompt_length + stop - 1;
  const members = v.groups[v.prompt_length + stop - 1];
  return chipOf(v, members[members.length - 1] - 1) + 1;
}

/** The sum of rows `[start, stop)` of a rows × cols matrix (exact by linearity: the span's summed target). */
export function spanRow(matrix: ArrayLike<number>, cols: number, start: number, stop: number): Float32Array {
  const out = new Float32Array(cols);
  for (let k = start; k < stop; k++) for (let j = 0; j < cols; j++) out[j] += matrix[k * cols + j];
  return out;
}

/** The selection after clicking generated chip `k` (plain: that chip; `extend`: from the current one to `k`). */
export function clickSelection(v: GenView, prompt: number, current: Selection, k: number, extend: boolean): Selection {
  const [a, b] = tokensOf(v, prompt, k);
  if (!extend) return b - a > 1 ? { selected: b - 1, span: [a, b] } : { selected: a, span: null };
  const anchor = tokensOf(v, prompt, chipOf(v, prompt + current.selected) - v.prompt_length);
  const first = Math.min(a, anchor[0]);
  const stop = Math.max(b, anchor[1]);
  return stop - first > 1 ? { selected: current.selected, span: [first, stop] } : { selected: first, span: null };
}

const FN: Record<string, string> = { log_prob: "log p", probability: "p", logit: "logit" };

const quoted = (text: string) => `'${shownToken(text)}'`;

/** What rows `[start, stop)` explain, e.g. "log p(' Paris') − log p(' London')" (`target_label` in figure.py). */
export function targetLabel(v: GenView, info: GenInfo, prompt: number, start: number, stop: number): string {
  const generated = v.tokens.slice(v.prompt_length);
  const text = generated.slice(start, stop).join("");
  const first = tokensOf(v, prompt, start)[0];
  const end = tokensOf(v, prompt, stop - 1)[1];
  const fn = FN[info.target] ?? info.target;
  let names = info.contrast_tokens ?? [];
  if (names.length > 1) names = names.slice(first, end);
  const contrast = !names.length ? null : new Set(names).size === 1 ? quoted(names[0]) : "contrast";
  if (end - first === 1 || info.target === "log_prob") {
    const label = `${fn}(${quoted(text)})`;
    return contrast === null ? label : `${label} − ${fn}(${contrast})`;
  }
  return contrast === null ? `Σ ${fn} over ${quoted(text)}` : `Σ [${fn} − ${fn}(${contrast})] over ${quoted(text)}`;
}

/** What each row of the matrix view explains, e.g. "row k: log p(generated token k) − contrast". */
export function matrixLabel(info: GenInfo, granularity: string): string {
  const contrast = info.contrast_tokens?.length ? " − contrast" : "";
  return `row k: ${FN[info.target] ?? info.target}(generated ${granularity} k)${contrast}`;
}

/** "Explaining ' Paris' (generated token 4 of 8)" (`_title` in figure.py). */
export function titleOf(v: GenView, granularity: string, start: number, stop: number): string {
  const text = quoted(v.tokens.slice(v.prompt_length + start, v.prompt_length + stop).join(""));
  const where = stop - start === 1 ? `${start + 1}` : `${start + 1}–${stop}`;
  return `Explaining ${text} (generated ${granularity}${stop - start > 1 ? "s" : ""} ${where} of ${nGenerated(v)})`;
}

/** The values of every matrix cell some row can use (row k: chips before its causal limit). */
export function usableCells(v: GenView): Float32Array {
  const cols = v.tokens.length;
  const out: number[] = [];
  for (let k = 0; k < nGenerated(v); k++) {
    const limit = causalLimit(v, k + 1);
    for (let j = 0; j < limit; j++) out.push(v.matrix[k * cols + j]);
  }
  return Float32Array.from(out);
}
