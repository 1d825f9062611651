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
