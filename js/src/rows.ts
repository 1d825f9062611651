/** Which outputs a long list or grid shows, and which of them are on screen (pure, unit-tested). */
import { searchLabels, topK } from "./ranking";

export interface RowQuery {
  /** Label or index search ("" = no filter). */
  query: string;
  /** "index": the model's output order; "score": highest score first. */
  sort: "index" | "score";
  /** Keep the `top` highest-scoring rows (0 = all). */
  top: number;
}

/** The rows (flat output indices, a subset of `rows`) to show, in display order. */
export function orderRows(rows: number[], scores: ArrayLike<number>, labels: string[], q: RowQuery): number[] {
  let out = rows;
  if (q.top > 0 && q.top < out.length) {
    const kept = new Set(topK(out.map((r) => scores[r] ?? -Infinity), q.top).map((i) => out[i]));
    out = out.filter((r) => kept.has(r));
  }
  if (q.query.trim()) {
    const hits = new Set(searchLabels(labels, q.query, labels.length));
    out = out.filter((r) => hits.has(r));
  }
  if (q.sort === "score") out = [...out].sort((a, b) => (scores[b] ?? -Infinity) - (scores[a] ?? -Infinity) || a - b);
  return out;
}

/** Up to `size` entries of `list` centred on `key` (clamped at the ends); the start when `key` is absent. */
export function windowAround(list: number[], key: number, size: number): number[] {
  if (list.length <= size) return list;
  const at = Math.max(0, list.indexOf(key));
  const start = Math.min(Math.max(0, at - Math.floor(size / 2)), list.length - size);
  return list.slice(start, start + size);
}

/** First and one-past-last row index drawn for a scroll position (with `overscan` rows either side). */
export function visibleRange(scrollTop: number, viewport: number, rowHeight: number, count: number, overscan = 4): [number, number] {
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(count, Math.ceil((scrollTop + viewport) / rowHeight) + overscan);
  return [first, Math.max(first, last)];
}

/** Label every `stride`-th of cells `cell` pixels apart so that labels `minGap` pixels apart never collide. */
export function labelStride(cell: number, minGap: number): number {
  return Math.max(1, Math.ceil(minGap / Math.max(cell, 1e-6)));
}
