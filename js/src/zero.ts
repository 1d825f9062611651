/**
 * Maps that are zero up to float rounding, and why (saliency_widgets/zero.py, the same rule and
 * sentences): the browser applies it to the maps it derives itself from the prefetched Jacobian;
 * the kernel's maps carry their `note` in the wire metadata.
 *
 * A display cell summed from terms t_k (a text chip over the embedding axis, an image pixel over its
 * channels) is rounding noise when |Σ t_k| <= SUM_RTOL · Σ |t_k|; a cell that is not a sum only when it
 * is exactly 0. A map is zero up to rounding when every shown cell is noise and every value is finite.
 */

/** Relative size of a sum's rounding noise (zero.SUM_RTOL in Python). */
export const SUM_RTOL = 1e-5;

const CAM_NAMES: Record<string, string> = { gradcam: "Grad-CAM", gradcam_plus_plus: "Grad-CAM++" };
const SIGNED: Record<string, string> = { gradient: "the signed gradient", smoothgrad: "SmoothGrad's signed gradient" };
const PLURAL: Record<string, string> = { embedding: "embeddings", channel: "channels" };

/** `(sum, Σ|term|)` per display cell, in float64: `values` of `shape` summed over `axis` (or as they are). */
export function sumsAndMasses(values: ArrayLike<number>, shape: number[], axis: number | null): [Float64Array, Float64Array] {
  if (axis === null) {
    const total = Float64Array.from(values);
    return [total, total.map(Math.abs)];
  }
  const n = shape[axis];
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const total = new Float64Array(outer * inner);
  const mass = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < n; c++) {
      const base = (o * n + c) * inner;
      for (let i = 0; i < inner; i++) {
        total[o * inner + i] += values[base + i];
        mass[o * inner + i] += Math.abs(values[base + i]);
      }
    }
  }
  return [total, mass];
}

export interface ZeroOptions {
  method: string;
  /** The axis of `shape` summed for display; null: each value is drawn as it is. */
  summedAxis?: number | null;
  axisName?: string;
  /** As the method was called (Grad-CAM's `relu=`). */
  relu?: boolean;
  /** Which display cells are on screen (padding tokens are not); omitted: all. */
  shown?: ArrayLike<boolean> | null;
}

/** Why one sample's map `values` (of `shape`) is zero up to float rounding, or null when it is not. */
export function zeroReason(values: ArrayLike<number>, shape: number[], opts: ZeroOptions): string | null {
  if (values.length === 0) return null;
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return null;
  const axis = opts.summedAxis ?? null;
  const [total, mass] = sumsAndMasses(values, shape, axis);
  let any = false;
  let noise = true;
  let counted = 0;
  for (let i = 0; i < total.length; i++) {
    if (opts.shown && !opts.shown[i]) continue;
    counted++;
    if (mass[i] !== 0) any = true;
    if (!(Math.abs(total[i]) <= SUM_RTOL * mass[i])) noise = false;
  }
  if (counted === 0) return null;
  if (!any) {
    const cam = CAM_NAMES[opts.method];
    if (cam && opts.relu !== false) return `${cam}'s ReLU clipped every pixel: no location raises this score; try relu=False or another layer`;
    return "the map is exactly 0 everywhere: nothing here moves this score (e.g. every ReLU on its path is off)";
  }
  if (axis === null || !noise) return null;
  const name = opts.axisName ?? "embedding";
  const plural = PLURAL[name] ?? `${name}s`;
  const signed = SIGNED[opts.method];
  if (signed) return `${signed} summed over the ${name} axis is 0 up to rounding: the ${plural} feed a normalisation layer; use input × gradient`;
  const instead = opts.method === "input_x_gradient" ? "integrated gradients" : "input × gradient";
  return `the map summed over the ${name} axis is 0 up to rounding: its terms cancel; use ${instead}`;
}

/** A `zeroReason` as a sentence: capitalised, with a full stop. */
export function zeroDetail(note: string): string {
  return `${note.slice(0, 1).toUpperCase()}${note.slice(1)}.`;
}

/** What is shown in place of the colour bar for a `zeroReason` (zero.zero_sentence in Python). */
export function zeroSentence(note: string): string {
  return `Zero map. ${zeroDetail(note)}`;
}
