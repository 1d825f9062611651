/** An n-dimensional array as it arrives from the kernel: raw bytes plus shape and dtype. */
export interface WireArray {
  data: DataView | ArrayBuffer | ArrayBufferView;
  shape: number[];
  dtype: string;
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

function asBytes(data: WireArray["data"]): { buffer: ArrayBuffer; byteOffset: number; byteLength: number } {
  if (data instanceof ArrayBuffer) return { buffer: data, byteOffset: 0, byteLength: data.byteLength };
  return { buffer: data.buffer as ArrayBuffer, byteOffset: data.byteOffset, byteLength: data.byteLength };
}
