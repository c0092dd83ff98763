/**
 * Checkpoint container: JSON metadata plus named raw tensors, in one byte string.
 *
 * ```
 * bytes 0..3   magic "RHCK"
 * bytes 4..7   format version (u32 LE) = 1
 * bytes 8..11  header length H (u32 LE)
 * bytes 12..   header: UTF-8 JSON { meta, tensors: [{ name, dtype, dims, offset, bytes }] }
 * then         tensor data, each at `offset` from the start of the data area, 8-byte aligned
 * ```
 * Little-endian tensor data (the byte order of every platform onnxruntime runs on).
 */

export type TensorDtype = 'float32' | 'float16' | 'int64' | 'int32' | 'uint8';

export interface NamedTensor {
  dtype: TensorDtype;
  dims: number[];
  /** The raw elements; its byte length must match dims and dtype. */
  data: Float32Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;
}

export class CheckpointFormatError extends Error {
  override name = 'CheckpointFormatError';
}

const MAGIC = 0x4b434852; // "RHCK" little-endian
const VERSION = 1;

const BYTES: Record<TensorDtype, number> = { float32: 4, float16: 2, int64: 8, int32: 4, uint8: 1 };

export function encodeCheckpoint(meta: unknown, tensors: ReadonlyMap<string, NamedTensor>): Uint8Array {
  const table: { name: string; dtype: TensorDtype; dims: number[]; offset: number; bytes: number }[] = [];
  let off = 0;
  for (const [name, t] of tensors) {
    const n = t.dims.reduce((a, b) => a * b, 1);
    if (t.data.byteLength !== n * BYTES[t.dtype]) throw new CheckpointFormatError(`tensor ${name}: ${t.data.byteLength} bytes for ${t.dtype}[${t.dims.join(',')}]`);
    table.push({ name, dtype: t.dtype, dims: t.dims, offset: off, bytes: t.data.byteLength });
    off += align8(t.data.byteLength);
  }
  const header = new TextEncoder().encode(JSON.stringify({ meta, tensors: table }));
  const dataStart = align8(12 + header.length);
  const out = new Uint8Array(dataStart + off);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, VERSION, true);
  view.setUint32(8, header.length, true);
  out.set(header, 12);
  let i = 0;
  for (const t of tensors.values()) {
    const e = table[i++]!;
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), dataStart + e.offset);
  }
  return out;
}

export function decodeCheckpoint(buf: Uint8Array): { meta: unknown; tensors: Map<string, NamedTensor> } {
  if (buf.byteLength < 12) throw new CheckpointFormatError('checkpoint is truncated');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new CheckpointFormatError('not a rehyat checkpoint (bad magic)');
  const version = view.getUint32(4, true);
  if (version !== VERSION) throw new CheckpointFormatError(`checkpoint format ${version} is not supported (expected ${VERSION})`);
  const hlen = view.getUint32(8, true);
  if (12 + hlen > buf.byteLength) throw new CheckpointFormatError('checkpoint header is truncated');
  const head = JSON.parse(new TextDecoder().decode(buf.subarray(12, 12 + hlen))) as {
    meta: unknown;
    tensors: { name: string; dtype: TensorDtype; dims: number[]; offset: number; bytes: number }[];
  };
  const dataStart = align8(12 + hlen);
  const tensors = new Map<string, NamedTensor>();
  for (const e of head.tensors) {
    const start = dataStart + e.offset;
    if (start + e.bytes > buf.byteLength) throw new CheckpointFormatError(`tensor ${e.name} is truncated`);
    // Copy into a fresh, aligned ArrayBuffer so the typed array view is valid whatever buf's
    // offset (a Node Buffer's slice() is a view into a shared pool, hence the explicit copy).
    const raw = new ArrayBuffer(e.bytes);
    new Uint8Array(raw).set(buf.subarray(start, start + e.bytes));
    tensors.set(e.name, { dtype: e.dtype, dims: e.dims, data: view_(e.dtype, raw) });
  }
  return { meta: head.meta, tensors };
}

function view_(dtype: TensorDtype, raw: ArrayBuffer): NamedTensor['data'] {
  switch (dtype) {
    case 'float32':
      return new Float32Array(raw);
    case 'float16':
      return new Uint16Array(raw);
    case 'int64':
      return new BigInt64Array(raw);
    case 'int32':
      return new Int32Array(raw);
    case 'uint8':
      return new Uint8Array(raw);
    default:
      throw new CheckpointFormatError(`unknown dtype ${String(dtype)}`);
  }
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
