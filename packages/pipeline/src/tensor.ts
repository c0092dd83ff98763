/** A tensor in host memory (the shape both backends take and return). float16 as half bits. */
export type TensorType = 'float32' | 'float16' | 'int64' | 'int32' | 'uint8';

export interface HostTensor {
  type: TensorType;
  dims: readonly number[];
  data: Float32Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;
}

export function elements(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function f32(dims: readonly number[], data?: Float32Array): HostTensor {
  const n = elements(dims);
  const d = data ?? new Float32Array(n);
  if (d.length !== n) throw new RangeError(`float32 tensor [${dims.join(',')}] needs ${n} elements, got ${d.length}`);
  return { type: 'float32', dims: [...dims], data: d };
}

export function i64(dims: readonly number[], data: BigInt64Array): HostTensor {
  return { type: 'int64', dims: [...dims], data };
}

/** Concatenates two tensors of equal shape along the first axis (CFG batching). */
export function concat0(a: HostTensor, b: HostTensor): HostTensor {
  if (a.type !== b.type) throw new TypeError('concat0: dtype mismatch');
  const Ctor = a.data.constructor as new (n: number) => HostTensor['data'];
  const out = new Ctor(a.data.length + b.data.length);
  (out as Float32Array).set(a.data as Float32Array, 0);
  (out as Float32Array).set(b.data as Float32Array, a.data.length);
  return { type: a.type, dims: [a.dims[0]! + b.dims[0]!, ...a.dims.slice(1)], data: out };
}

/** Slices rows [start, end) of the first axis. */
export function slice0(t: HostTensor, start: number, end: number): HostTensor {
  const row = elements(t.dims.slice(1));
  return { type: t.type, dims: [end - start, ...t.dims.slice(1)], data: t.data.slice(start * row, end * row) as HostTensor['data'] };
}
