/** What the kernel sends for one layer (see saliency_widgets/widgets/weight_inspector.py). */
import { decode, type WireArray } from "../decode";
import type { Picture } from "./downsample";

export interface LayerRow {
  name: string;
  type: string;
  output_shape: (number | null)[] | null;
  n_params: number;
}

export interface BlockWire {
  name: string;
  role: string;
  gate: string | null;
  source: string;
  shape: number[];
  axes: string[];
  description: string;
  row: number;
  col: number;
  layout: string;
  row_label: string;
  col_label: string;
  /** Downsampling already applied by the kernel (1 picture cell = fr×fc block cells). */
  factor: [number, number];
  /** Rows and columns of the picture at full resolution. */
  full: [number, number];
  tile: [number, number];
  rule: string;
  values: WireArray;
  index: WireArray;
}

export interface TableWire {
  rows: string[];
  cols: string[];
  m: number;
  has_gates: boolean;
  hist: number[];
  stats: { min: number; max: number; mean: number; std: number };
}

/** A region of a block's full-resolution picture: rows [r0, r1) × cols [c0, c1). */
export interface ZoomRequest {
  block: string;
  rows: [number, number];
  cols: [number, number];
}

/** The kernel's answer to a ZoomRequest. */
export interface ZoomWire extends ZoomRequest {
  values: WireArray;
  index: WireArray;
}

/** The picture carried by a block or zoom wire. */
export function wirePicture(w: { values: WireArray; index: WireArray }): Picture {
  const [rows, cols] = w.values.shape;
  return { values: decode(w.values) as Float32Array, index: decode(w.index) as Int32Array, rows, cols };
}
