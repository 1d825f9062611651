/** Attribution maps the browser derives itself from a prefetched Jacobian. */

/** Methods computable from one Jacobian row (mirrors LOCAL_METHODS in Python). */
export type LocalMethod = "gradient" | "input_x_gradient";

/** Row `target` of a (nOutputs, sampleSize) Jacobian minus row `contrast` (when not null: the map of
 *  score(target) − score(contrast)), times the input for input×gradient; float32 steps, as numpy's. */
export function localAttribution(
  jacobian: ArrayLike<number>,
  sampleSize: number,
  target: number,
  method: LocalMethod,
  input: ArrayLike<number>,
  contrast: number | null = null,
): Float32Array {
  const out = new Float32Array(sampleSize);
  const start = target * sampleSize;
  if (contrast === null) for (let i = 0; i < sampleSize; i++) out[i] = jacobian[start + i];
  else for (let i = 0, versus = contrast * sampleSize; i < sampleSize; i++) out[i] = jacobian[start + i] - jacobian[versus + i];
  if (method === "input_x_gradient") for (let i = 0; i < sampleSize; i++) out[i] *= input[i];
  return out;
}

/**
 * The display map of one sample: sums the channel axis `channelAxis` of
 * `shape` (the documented rule for images) or returns the values unchanged.
 */
export function reduceChannels(values: Float32Array, shape: number[], channelAxis: number | null): Float32Array {
  if (channelAxis === null || channelAxis === undefined) return values;
  const channels = shape[channelAxis];
  const inner = shape.slice(channelAxis + 1).reduce((a, b) => a * b, 1);
  const outer = shape.slice(0, channelAxis).reduce((a, b) => a * b, 1);
  const out = new Float32Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      for (let i = 0; i < inner; i++) out[o * inner + i] = Math.fround(out[o * inner + i] + values[base + i]);
    }
  }
  return out;
}
