/** Pure geometry of the inspector's block table: one cell size for all blocks of a layer. */

/** Where a block sits in the table and how many picture cells it has. */
export interface PanelShape {
  row: number;
  col: number;
  rows: number;
  cols: number;
}

/** What the table may use. Cells are at least `minCell` and at most `maxCell` px on a side,
 * and never more than `maxAspect` times longer on one side than on the other. */
export interface TableLimits {
  width: number;
  height: number;
  gap: number;
  minCell: number;
  maxCell: number;
  maxAspect: number;
}

export interface TableLayout {
  /** CSS px of one displayed cell. */
  cw: number;
  ch: number;
  /** Downsampling factors (1 displayed cell = fr×fc picture cells), the same for every block. */
  fr: number;
  fc: number;
  /** CSS px of each table column / row band. */
  colWidths: number[];
  rowHeights: number[];
}

/** Displayed cells of `n` picture cells downsampled by `f`. */
export function reduced(n: number, f: number): number {
  return Math.ceil(n / f);
}

function bands(panels: PanelShape[], fr: number, fc: number): { cols: number[]; rows: number[] } {
  const nr = Math.max(0, ...panels.map((p) => p.row + 1));
  const nc = Math.max(0, ...panels.map((p) => p.col + 1));
  const rows = new Array<number>(nr).fill(0);
  const cols = new Array<number>(nc).fill(0);
  for (const p of panels) {
    rows[p.row] = Math.max(rows[p.row], reduced(p.rows, fr));
    cols[p.col] = Math.max(cols[p.col], reduced(p.cols, fc));
  }
  return { rows, cols };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
/** Whole pixels from 3 px up; below, 1/64 px steps rounded down (the table never outgrows its width). */
const snap = (v: number) => (v >= 3 ? Math.floor(v) : Math.floor(v * 64) / 64);

/** Cell size and downsampling so that the whole table fits `limits` (see TableLimits). */
export function tableLayout(panels: PanelShape[], limits: TableLimits): TableLayout {
  const { width, height, gap, minCell, maxCell, maxAspect } = limits;
  let fr = 1;
  let fc = 1;
  let b = bands(panels, fr, fc);
  for (let i = 0; i < 8; i++) {
    const cw0 = (width - gap * Math.max(0, b.cols.length - 1)) / Math.max(1, sum(b.cols));
    const ch0 = (height - gap * Math.max(0, b.rows.length - 1)) / Math.max(1, sum(b.rows));
    const nfc = cw0 < minCell ? fc * Math.ceil(minCell / Math.max(cw0, 1e-9)) : fc;
    const nfr = ch0 < minCell ? fr * Math.ceil(minCell / Math.max(ch0, 1e-9)) : fr;
    if (nfc === fc && nfr === fr) {
      let cw = Math.min(maxCell, cw0);
      let ch = Math.min(maxCell, ch0);
      cw = snap(Math.min(cw, ch * maxAspect));
      ch = snap(Math.min(ch, cw * maxAspect));
      return { cw, ch, fr, fc, colWidths: b.cols.map((n) => n * cw), rowHeights: b.rows.map((n) => n * ch) };
    }
    fr = nfr;
    fc = nfc;
    b = bands(panels, fr, fc);
  }
  throw new Error("table layout did not converge");
}

/** The region (start row/col, row/col count) of a rows×cols picture shown by a zoom of at most
 * maxRows×maxCols cells centred on (r, c), clamped to the picture. */
export function zoomWindow(
  r: number, c: number, rows: number, cols: number, maxRows: number, maxCols: number,
): { r0: number; c0: number; nr: number; nc: number } {
  const nr = Math.min(rows, maxRows);
  const nc = Math.min(cols, maxCols);
  const clamp = (v: number, hi: number) => Math.max(0, Math.min(hi, v));
  return { r0: clamp(Math.round(r - nr / 2), rows - nr), c0: clamp(Math.round(c - nc / 2), cols - nc), nr, nc };
}
