/** An n-dimensional array as it arrives from the kernel: raw bytes plus shape and dtype. */
export interface WireArray {
  data: DataView | ArrayBuffer | ArrayBufferView;
  shape: number[];
  dtype: string;
  /** dtype "q8" only: one scale per row of the first axis (one for a 1-D array). */
  scales?: number[];
}

const CONSTRUCTORS = {
  float32: Float32Array,
  float64: Float64Array,
  uint8: Uint8Array,
  int32: Int32Array,
} as const;

export type DType = keyof typeof CONSTRUCTORS;

/**
 * Views the bytes of a WireArray as a typed array without copying when the
 * offset is aligned (copies otherwise). Accepts DataView, ArrayBuffer or any
 * typed array, and respects byteOffset.
 */
export function decode(wire: WireArray): Float32Array | Float64Array | Uint8Array | Int32Array {
  if (wire.dtype === "q8") return dequantize(wire);
  const Ctor = CONSTRUCTORS[wire.dtype as DType];
  if (!Ctor) throw new Error(`unsupported dtype ${wire.dtype}`);
  const { buffer, byteOffset, byteLength } = asBytes(wire.data);
  const count = wire.shape.reduce((a, b) => a * b, 1);
  if (count * Ctor.BYTES_PER_ELEMENT !== byteLength) {
    throw new Error(`shape ${JSON.stringify(wire.shape)} needs ${count * Ctor.BYTES_PER_ELEMENT} bytes, got ${byteLength}`);
  }
  if (byteOffset % Ctor.BYTES_PER_ELEMENT === 0) return new Ctor(buffer, byteOffset, count);
  return new Ctor(buffer.slice(byteOffset, byteOffset + byteLength));
}

/**
 * A float array an offline page stores as 8-bit codes (saliency_widgets/transport.py `quantized`, to fit its
 * size budget): value = (code − 128) / 127 × the scale of its row of the first axis; 0 stays 0.
 */
export function dequantize(wire: WireArray): Float32Array {
  const codes = decode({ data: wire.data, shape: wire.shape, dtype: "uint8" }) as Uint8Array;
  const scales = wire.scales ?? [];
  const out = new Float32Array(codes.length);
  const block = codes.length / Math.max(1, scales.length);
  for (let b = 0; b < scales.length; b++) {
    const k = scales[b] / 127;
    for (let i = b * block, end = (b + 1) * block; i < end; i++) out[i] = (codes[i] - 128) * k;
  }
  return out;
}

function asBytes(data: WireArray["data"]): { buffer: ArrayBuffer; byteOffset: number; byteLength: number } {
  if (data instanceof ArrayBuffer) return { buffer: data, byteOffset: 0, byteLength: data.byteLength };
  return { buffer: data.buffer as ArrayBuffer, byteOffset: data.byteOffset, byteLength: data.byteLength };
}
