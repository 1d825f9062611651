/**
 * The normalization rule of saliency_widgets/colors.py, mirrored exactly
 * (same float64 arithmetic, same numpy "linear" percentile):
 *   t = signTransform(v, sign); m = scaleMax(values, sign, outlierPerc);
 *   u = (t + m) / (2m) for "all", t / m otherwise; index = clip(floor(255u + 0.5), 0, 255).
 */
export const SIGNS = ["all", "positive", "negative", "absolute_value"] as const;
export type Sign = (typeof SIGNS)[number];

/**
 * The sign a map is drawn with (shown_sign in colors.py): `sign`, except that a map that is ≥ 0 by
 * construction (`nonnegative`: decided by its method, e.g. Grad-CAM after its ReLU, never guessed from its
 * values) shown "all" is drawn one-sided as "positive": 0 → max over the whole sequential map, not the
 * upper half of the diverging one.
 */
export function shownSign(sign: Sign, nonnegative: boolean): Sign {
  return nonnegative && sign === "all" ? "positive" : sign;
}

/** Step 1: the value the colour scale shows (NaN counts as 0). */
export function signTransform(v: number, sign: Sign): number {
  if (v !== v) v = 0;
  if (sign === "positive") return v > 0 ? v : 0;
  if (sign === "negative") return v < 0 ? -v : 0;
  if (sign === "absolute_value") return Math.abs(v);
  return v;
}

/** numpy.percentile(sorted, p) with the default linear method, on ascending data. */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  const q = p / 100;
  const virtual = (n - 1) * q;
  const prev = Math.min(Math.max(Math.floor(virtual), 0), n - 1);
  const next = Math.min(prev + 1, n - 1);
  const gamma = virtual - prev;
  const a = sorted[prev];
  const b = sorted[next];
  const diff = b - a;
  return gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma;
}

/** Step 2: the magnitude at which colours saturate. */
export function scaleMax(values: ArrayLike<number>, sign: Sign, outlierPerc: number): number {
  const mags = new Float64Array(values.length);
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const t = Math.abs(signTransform(values[i], sign));
    if (Number.isFinite(t)) mags[count++] = t;
  }
  if (count === 0) return 1;
  const sorted = mags.subarray(0, count).sort();
  let m = percentileSorted(sorted, 100 - outlierPerc);
  if (!(m > 0)) m = sorted[count - 1];
  return m > 0 ? m : 1;
}

/** Step 3: the range of transformed values the colour scale spans. */
export function valueRange(m: number, sign: Sign): [number, number] {
  return sign === "all" ? [-m, m] : [0, m];
}

/** Step 4: the LUT index of one value at scale m. */
export function toIndex(v: number, sign: Sign, m: number): number {
  const t = signTransform(v, sign);
  const u = sign === "all" ? (t + m) / (2 * m) : t / m;
  const i = Math.floor(u * 255 + 0.5);
  return i < 0 ? 0 : i > 255 ? 255 : i;
}

/** Alpha of LUT index i drawn over an image: 0 where the value is 0. */
export function overlayAlpha(i: number, sign: Sign): number {
  const strength = sign === "all" ? Math.abs(2 * i - 255) : 2 * i;
  return Math.min(strength, 255);
}

/**
 * Writes RGBA pixels of `values` into `out` (length 4 * values.length) through
 * the 256×4 `lut`; with `overlay`, alpha follows overlayAlpha instead of the LUT.
 * `at(k)` maps pixel k to its index in `values` (identity when omitted).
 */
export function colorize(
  values: ArrayLike<number>,
  sign: Sign,
  m: number,
  lut: Uint8Array,
  out: Uint8ClampedArray,
  overlay = false,
  at?: (k: number) => number,
): void {
  const n = out.length >> 2;
  for (let k = 0; k < n; k++) {
    const i = toIndex(values[at ? at(k) : k], sign, m);
    const o = k << 2;
    const l = i << 2;
    out[o] = lut[l];
    out[o + 1] = lut[l + 1];
    out[o + 2] = lut[l + 2];
    out[o + 3] = overlay ? overlayAlpha(i, sign) : lut[l + 3];
  }
}

/** The overlay backdrop spans these greys (BACKDROP_BLACK / BACKDROP_WHITE in colors.py): darkened, so the
 *  pale middle of the diverging map shows over white strokes and its dark ends over black background. */
export const BACKDROP_BLACK = 32;
export const BACKDROP_WHITE = 144;

/**
 * The backdrop of image overlays, one byte per pixel: the luminance (Rec. 601) of an
 * RGB(A) or grey uint8 picture, mapped into [BACKDROP_BLACK, BACKDROP_WHITE]
 * (``greyscale`` in saliency_widgets/colors.py).
 */
export function greyscale(pixels: Uint8Array, channels: number): Uint8Array {
  const n = Math.floor(pixels.length / channels);
  const out = new Uint8Array(n);
  const gain = (BACKDROP_WHITE - BACKDROP_BLACK) / 255;
  for (let k = 0; k < n; k++) {
    const o = k * channels;
    const lum = channels < 3 ? pixels[o] : 0.299 * pixels[o] + 0.587 * pixels[o + 1] + 0.114 * pixels[o + 2];
    out[k] = Math.floor(BACKDROP_BLACK + gain * lum + 0.5);
  }
  return out;
}
