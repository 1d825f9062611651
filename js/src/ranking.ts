/** Choosing which outputs to list when there are many: top-k and label search. */

/** Indices of the k largest scores, largest first (ties keep index order). */
export function topK(scores: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: scores.length }, (_, i) => i);
  idx.sort((a, b) => scores[b] - scores[a] || a - b);
  return idx.slice(0, Math.max(0, k));
}

/** Indices whose label contains `query` (case-insensitive) or equals it as a number, at most `limit`. */
export function searchLabels(labels: string[], query: string, limit: number): number[] {
  const q = query.trim().toLowerCase();
  if (!q) return [];
  const hits: number[] = [];
  const asIndex = /^\d+$/.test(q) ? Number(q) : -1;
  if (asIndex >= 0 && asIndex < labels.length) hits.push(asIndex);
  for (let i = 0; i < labels.length && hits.length < limit; i++) {
    if (i !== asIndex && labels[i].toLowerCase().includes(q)) hits.push(i);
  }
  return hits;
}

/** Left offset and width (fractions of the track) of a bar from 0 to v on a track spanning [lo, hi]. */
export function barSpan(v: number, lo: number, hi: number): { left: number; width: number } {
  const min = Math.min(lo, 0);
  const max = Math.max(hi, 0);
  const span = max - min || 1;
  const zero = (0 - min) / span;
  const at = (Math.min(Math.max(v, min), max) - min) / span;
  return { left: Math.min(zero, at), width: Math.abs(at - zero) };
}
