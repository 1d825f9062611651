/** Max-|w| downsampling of a block picture (the rule of weight_display.py, applied again to fit the screen). */

export interface Picture {
  values: Float32Array;
  /** Each cell's flat position in the block (-1 = blank separator). */
  index: Int32Array;
  rows: number;
  cols: number;
}

/** Each fr×fc window becomes the entry of largest magnitude, sign and index kept (NaN/-1 = blank). */
export function downsample(pic: Picture, fr: number, fc: number): Picture {
  if (fr === 1 && fc === 1) return pic;
  const rows = Math.ceil(pic.rows / fr);
  const cols = Math.ceil(pic.cols / fc);
  const values = new Float32Array(rows * cols).fill(NaN);
  const index = new Int32Array(rows * cols).fill(-1);
  const best = new Float32Array(rows * cols).fill(-1);
  for (let r = 0; r < pic.rows; r++) {
    const base = Math.floor(r / fr) * cols;
    for (let c = 0; c < pic.cols; c++) {
      const v = pic.values[r * pic.cols + c];
      if (v !== v) continue;
      const k = base + Math.floor(c / fc);
      const a = Math.abs(v);
      if (a > best[k]) {
        best[k] = a;
        values[k] = v;
        index[k] = pic.index[r * pic.cols + c];
      }
    }
  }
  return { values, index, rows, cols };
}

/** The cells [r0, r0+nr) × [c0, c0+nc) of a picture. */
export function crop(pic: Picture, r0: number, c0: number, nr: number, nc: number): Picture {
  const values = new Float32Array(nr * nc);
  const index = new Int32Array(nr * nc);
  for (let r = 0; r < nr; r++) {
    const from = (r0 + r) * pic.cols + c0;
    values.set(pic.values.subarray(from, from + nc), r * nc);
    index.set(pic.index.subarray(from, from + nc), r * nc);
  }
  return { values, index, rows: nr, cols: nc };
}
