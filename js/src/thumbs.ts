/**
 * Thumbnail pages of the DatasetMap gallery (pure, unit-tested): a page as the kernel sends it, a
 * bounded cache of thumbnails, which pages the view asks for, and the pixels of one thumbnail.
 */

/** Thumbnail grid: rows × cols cells; `channels` of the input picture (0: no input drawn). */
export interface ThumbGeometry {
  rows: number;
  cols: number;
  channels: number;
}

/** One sample's thumbnail: LUT indices of its map, its input picture, predicted and true class. */
export interface Thumb {
  map: Uint8Array;
  input: Uint8Array | null;
  pred: number;
  truth: number | null;
}

/** A page's metadata: the samples it holds (in the order of its arrays) and the colour key. */
export interface PageMeta {
  indices: number[];
  key: string;
  pred: number[];
  true: number[] | null;
}

/** The thumbnails of a page whose map indices and input pictures arrived as two byte arrays. */
export function unpackPage(meta: PageMeta, maps: Uint8Array, inputs: Uint8Array | null, geo: ThumbGeometry): [number, Thumb][] {
  const cells = geo.rows * geo.cols;
  const pix = cells * Math.max(geo.channels, 1);
  return meta.indices.map((index, k): [number, Thumb] => [
    index,
    {
      map: maps.slice(k * cells, (k + 1) * cells),
      input: inputs ? inputs.slice(k * pix, (k + 1) * pix) : null,
      pred: meta.pred[k],
      truth: meta.true ? meta.true[k] : null,
    },
  ]);
}

/** Least-recently-used thumbnails by sample index, at most `capacity` of them. */
export class ThumbCache {
  private items = new Map<number, Thumb>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.items.size;
  }

  has(index: number): boolean {
    return this.items.has(index);
  }

  /** The thumbnail of sample `index` (now the most recently used), or undefined. */
  get(index: number): Thumb | undefined {
    const thumb = this.items.get(index);
    if (thumb) {
      this.items.delete(index);
      this.items.set(index, thumb);
    }
    return thumb;
  }

  set(index: number, thumb: Thumb): void {
    this.items.delete(index);
    this.items.set(index, thumb);
    for (const oldest of this.items.keys()) {
      if (this.items.size <= this.capacity) break;
      this.items.delete(oldest);
    }
  }

  clear(): void {
    this.items.clear();
  }
}

/** Thumbnails kept: about `budget` bytes of them, but never fewer than a few screens' worth. */
export function cacheCapacity(geo: ThumbGeometry, budget = 24 << 20): number {
  const bytes = geo.rows * geo.cols * (1 + geo.channels) + 160; // arrays plus their objects
  return Math.max(512, Math.min(50_000, Math.floor(budget / bytes)));
}

/** Pages (of `pageSize` gallery positions) that overlap positions [first, last) of `count`. */
export function pagesFor(first: number, last: number, pageSize: number, count: number): number[] {
  const lo = Math.max(0, Math.floor(first / pageSize));
  const hi = Math.min(Math.ceil(count / pageSize), Math.ceil(Math.min(last, count) / pageSize));
  const pages: number[] = [];
  for (let p = lo; p < hi; p++) pages.push(p);
  return pages;
}

/** The samples of page `page` of `shown` that are neither cached nor asked for (`known`). */
export function missingOf(shown: ArrayLike<number>, page: number, pageSize: number, known: (index: number) => boolean): number[] {
  const out: number[] = [];
  for (let k = page * pageSize, end = Math.min(shown.length, (page + 1) * pageSize); k < end; k++) {
    if (!known(shown[k])) out.push(shown[k]);
  }
  return out;
}

/** RGBA of a map thumbnail: each cell's LUT colour. */
export function paintMap(indices: Uint8Array, lut: Uint8Array, out: Uint8ClampedArray): void {
  for (let k = 0; k < indices.length; k++) {
    const l = indices[k] << 2;
    const o = k << 2;
    out[o] = lut[l];
    out[o + 1] = lut[l + 1];
    out[o + 2] = lut[l + 2];
    out[o + 3] = lut[l + 3];
  }
}

/** RGBA of an input thumbnail: grey (1 channel) or RGB pixels, opaque. */
export function paintInput(pixels: Uint8Array, channels: number, out: Uint8ClampedArray): void {
  const n = out.length >> 2;
  for (let k = 0; k < n; k++) {
    const o = k << 2;
    const p = k * channels;
    out[o] = pixels[p];
    out[o + 1] = pixels[channels > 1 ? p + 1 : p];
    out[o + 2] = pixels[channels > 2 ? p + 2 : p];
    out[o + 3] = 255;
  }
}

/** On-screen size of one thumbnail: images zoomed nearest-neighbour by an integer to about `target`
 *  pixels; one-row strips (vectors, text) `strip` pixels wide; other grids (sequences: features × time)
 *  `strip` wide and up to `target` / 2 high, each axis zoomed by its own integer. */
export function thumbSize(geo: ThumbGeometry, image: boolean, target = 64, strip = 168): { width: number; height: number } {
  if (geo.rows === 1) return { width: Math.max(strip, geo.cols), height: 14 };
  if (image) {
    const zoom = Math.max(1, Math.floor(target / Math.max(geo.rows, geo.cols)));
    return { width: geo.cols * zoom, height: geo.rows * zoom };
  }
  const zx = Math.max(1, Math.floor(strip / geo.cols));
  const zy = Math.max(1, Math.floor(target / 2 / geo.rows));
  return { width: geo.cols * zx, height: geo.rows * zy };
}

/** Nearest-neighbour resampling of `src` onto `out` (any sizes): crisp cells at any zoom. */
export function upscale(src: ImageData, out: ImageData): void {
  const { width: sw, height: sh } = src;
  const { width: ow, height: oh } = out;
  const from = new Uint32Array(src.data.buffer, src.data.byteOffset, sw * sh);
  const to = new Uint32Array(out.data.buffer, out.data.byteOffset, ow * oh);
  const cols = new Int32Array(ow);
  for (let x = 0; x < ow; x++) cols[x] = Math.floor((x * sw) / ow);
  for (let y = 0; y < oh; y++) {
    const base = Math.floor((y * sh) / oh) * sw;
    const line = y * ow;
    for (let x = 0; x < ow; x++) to[line + x] = from[base + cols[x]];
  }
}
