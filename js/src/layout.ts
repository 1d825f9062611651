/** Pure geometry: sizes of heatmaps and grids, and hit-testing. */

/** Pixels per cell so that a rows×cols map fits maxW×maxH (integer when ≥ 1, clamped). */
export function cellSize(rows: number, cols: number, maxW: number, maxH: number, minCell = 1, maxCell = 32): number {
  let s = Math.min(maxW / cols, maxH / rows);
  if (s >= 1) s = Math.floor(s);
  return Math.max(minCell, Math.min(maxCell, s));
}

/** The cell under a point (x, y) of a box of width×height showing rows×cols cells, or null outside. */
export function cellAt(
  x: number,
  y: number,
  width: number,
  height: number,
  rows: number,
  cols: number,
): { row: number; col: number } | null {
  if (x < 0 || y < 0 || x >= width || y >= height || width <= 0 || height <= 0) return null;
  return { row: Math.min(rows - 1, Math.floor((y / height) * rows)), col: Math.min(cols - 1, Math.floor((x / width) * cols)) };
}

/** Columns of a grid of n tiles that is roughly square but at most maxCols wide. */
export function gridColumns(n: number, maxCols: number): number {
  return Math.max(1, Math.min(n, maxCols, Math.ceil(Math.sqrt(n * 1.6))));
}

/** How a row of column labels is laid out: flat or slanted, every `stride`-th column, in a band `height` px tall. */
export interface ColumnLabelPlan {
  /** 0 (flat, centred on its column) or SLANT (rising to the right, ending at its column). */
  angle: number;
  stride: number;
  height: number;
}

/** Degrees of slanted column labels. */
export const SLANT = 45;

/**
 * Column labels for columns `cell` px wide whose widest label is `widest` px (cut at `maxLength`) in lines
 * `line` px tall: flat when that labels at least as many columns as slanting would, else slanted by SLANT
 * degrees and thinned so that neighbouring slanted labels are `line` px apart across the slant (no overlap).
 */
export function columnLabelPlan(cell: number, widest: number, line: number, maxLength: number): ColumnLabelPlan {
  const gap = 6;
  const flatStride = Math.max(1, Math.ceil((widest + gap) / cell));
  const slant = (SLANT * Math.PI) / 180;
  const slantStride = Math.max(1, Math.ceil(line / (cell * Math.sin(slant))));
  if (flatStride <= slantStride) return { angle: 0, stride: flatStride, height: line + 4 };
  const length = Math.min(widest, maxLength);
  return { angle: SLANT, stride: slantStride, height: Math.ceil(length * Math.sin(slant) + line * Math.cos(slant)) + 6 };
}

/** How a rows×cols map is scaled to fit maxW×maxH: `cell` CSS px per cell, and whether it is drawn `crisp`
 *  (nearest-neighbour, whole pixels per cell: every cell the same size). A map scaled up at least 4× — an 8×8
 *  digit — or nearly to a whole factor is crisp; otherwise (a 224² photo at 1.96×, or scaled down) the
 *  fractional scale fills the room and is drawn smoothly. */
export function fitCell(rows: number, cols: number, maxW: number, maxH: number): { cell: number; crisp: boolean } {
  const s = Math.max(Math.min(maxW / Math.max(cols, 1), maxH / Math.max(rows, 1)), 1e-3);
  const whole = Math.floor(s);
  if (whole >= 1 && (s >= 4 || whole / s >= 0.85)) return { cell: whole, crisp: true };
  return { cell: s, crisp: false };
}
