// Drives a HybridAttention model chunk by chunk, carrying S, z and the tails through the state.
import { fromFloat16Array, toFloat16Array, toHalfBits, fromHalfBits } from '../../src/float16.js';
import type { DeviceTensor, Feed, HostTensor, Session } from '../../src/index.js';
import type { Sequence } from './naive.js';

export type Dtype = 'float32' | 'float16';

/** Rounds the sequence to the element type, so the naive form sees the kernel's exact inputs. */
export function quantize(seq: Sequence, dtype: Dtype): Sequence {
  if (dtype === 'float32') {
    const r = (a: Float64Array) => Float64Array.from(Float32Array.from(a));
    return { ...seq, q: r(seq.q), k: r(seq.k), v: r(seq.v), fq: r(seq.fq), fk: r(seq.fk) };
  }
  const r = (a: Float64Array) => a.map((x) => fromHalfBits(toHalfBits(x)));
  return { ...seq, q: r(seq.q), k: r(seq.k), v: r(seq.v), fq: r(seq.fq), fk: r(seq.fk) };
}

export function tensor(dtype: Dtype, dims: number[], values: ArrayLike<number>): HostTensor {
  return dtype === 'float32'
    ? { type: 'float32', dims, data: Float32Array.from(values) }
    : { type: 'float16', dims, data: toFloat16Array(values) };
}

export function values(t: HostTensor): Float64Array {
  if (t.type === 'float16') return Float64Array.from(fromFloat16Array(t.data as Uint16Array));
  return Float64Array.from(t.data as Float32Array);
}

function slice(a: Float64Array, BH: number, N: number, w: number, s: number, c: number): Float64Array {
  const out = new Float64Array(BH * c * w);
  for (let bh = 0; bh < BH; bh++) out.set(a.subarray((bh * N + s) * w, (bh * N + s + c) * w), bh * c * w);
  return out;
}

export interface RecurrentOptions {
  B: number;
  H: number;
  chunks: readonly number[];
  dtype: Dtype;
  /** keep S, z and the tails as DeviceTensors between calls (CUDA sessions) */
  stateOnDevice?: boolean;
  /** pipelined runs (sync: false): y stays on the GPU too and is read back after the last chunk */
  pipelined?: boolean;
}

export async function runRecurrent(
  session: Session,
  seq: Sequence,
  o: RecurrentOptions,
): Promise<{ y: Float64Array; S: Float64Array; z: Float64Array }> {
  const { B, H, dtype } = o;
  const { BH, N, d, Dp } = seq;
  const y = new Float64Array(BH * N * d);
  let state: Record<string, Feed> = {
    S: tensor('float32', [B, H, Dp, d], new Float64Array(BH * Dp * d)),
    z: tensor('float32', [B, H, Dp], new Float64Array(BH * Dp)),
    k_tail: tensor(dtype, [B, H, 0, d], []),
    v_tail: tensor(dtype, [B, H, 0, d], []),
    fk_tail: tensor(dtype, [B, H, 0, Dp], []),
  };
  const where = o.stateOnDevice || o.pipelined ? 'cuda' : 'cpu';
  const place = (yc: Float64Array, s: number, c: number) => {
    for (let bh = 0; bh < BH; bh++) y.set(yc.subarray(bh * c * d, (bh + 1) * c * d), (bh * N + s) * d);
  };
  const pending: [DeviceTensor, number, number][] = [];
  let s = 0;
  for (const c of o.chunks) {
    const feeds: Record<string, Feed> = {
      q: tensor(dtype, [B, H, c, d], slice(seq.q, BH, N, d, s, c)),
      k: tensor(dtype, [B, H, c, d], slice(seq.k, BH, N, d, s, c)),
      v: tensor(dtype, [B, H, c, d], slice(seq.v, BH, N, d, s, c)),
      fq: tensor(dtype, [B, H, c, Dp], slice(seq.fq, BH, N, Dp, s, c)),
      fk: tensor(dtype, [B, H, c, Dp], slice(seq.fk, BH, N, Dp, s, c)),
      ...state,
    };
    const out = await session.run(feeds, {
      outputs: { y: o.pipelined ? 'cuda' : 'cpu', S_out: where, z_out: where, k_tail_out: where, v_tail_out: where, fk_tail_out: where },
      sync: !o.pipelined,
    });
    if (o.pipelined) pending.push([out['y'] as DeviceTensor, s, c]);
    else place(values(out['y'] as HostTensor), s, c);
    for (const f of Object.values(state)) if ('location' in f) f.dispose();
    state = {
      S: out['S_out']!,
      z: out['z_out']!,
      k_tail: out['k_tail_out']!,
      v_tail: out['v_tail_out']!,
      fk_tail: out['fk_tail_out']!,
    };
    s += c;
  }
  for (const [t, at, c] of pending) {
    place(values(t.toHost()), at, c);
    t.dispose();
  }
  const host = (f: Feed): HostTensor => ('location' in f ? (f as DeviceTensor).toHost() : (f as HostTensor));
  return { y, S: values(host(state['S']!)), z: values(host(state['z']!)) };
}
