// The independent naive form of ReHyAt attention (../../../shared/REHYAT.md), in float64:
// every query against every key of the whole sequence, with the causal chunk mask and the
// explicit sums; no state, no tails, no online softmax. Mirrors training/rehyat/attention/naive.py.

export interface Sequence {
  BH: number;
  N: number;
  d: number;
  Dp: number;
  /** [BH, N, d] / [BH, N, Dp], row-major */
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  fq: Float64Array;
  fk: Float64Array;
}

/** y [BH, N, d] for chunks of the given sizes, tail_tokens overlap tokens, and the final S, z. */
export function naiveHybrid(
  seq: Sequence,
  chunks: readonly number[],
  tailTokens: number,
  scale: number,
): { y: Float64Array; S: Float64Array; z: Float64Array } {
  const { BH, N, d, Dp } = seq;
  const y = new Float64Array(BH * N * d);
  // chunk start of every token
  const chunkStart = new Int32Array(N);
  const chunkEnd = new Int32Array(N);
  let s = 0;
  for (const c of chunks) {
    for (let i = s; i < s + c; i++) {
      chunkStart[i] = s;
      chunkEnd[i] = s + c;
    }
    s += c;
  }
  if (s !== N) throw new Error('chunks must cover the sequence');
  const logits = new Float64Array(N);
  for (let bh = 0; bh < BH; bh++) {
    for (let i = 0; i < N; i++) {
      const ws = Math.max(0, chunkStart[i]! - tailTokens); // window start
      const we = chunkEnd[i]!; // window end (exclusive): keys j >= we are future chunks: masked
      let c = -Infinity;
      for (let j = ws; j < we; j++) {
        let dot = 0;
        for (let e = 0; e < d; e++) dot += seq.q[(bh * N + i) * d + e]! * seq.k[(bh * N + j) * d + e]!;
        logits[j] = dot * scale;
        if (logits[j]! > c) c = logits[j]!;
      }
      let den = 0;
      const num = new Float64Array(d);
      for (let j = 0; j < we; j++) {
        let w: number;
        if (j >= ws) {
          w = Math.exp(logits[j]! - c); // softmax branch
        } else {
          w = 0; // linear branch: phi_q(q_i) . phi_k(k_j), not rescaled by exp(-c)
          for (let p = 0; p < Dp; p++) w += seq.fq[(bh * N + i) * Dp + p]! * seq.fk[(bh * N + j) * Dp + p]!;
        }
        den += w;
        for (let e = 0; e < d; e++) num[e]! += w * seq.v[(bh * N + j) * d + e]!;
      }
      for (let e = 0; e < d; e++) y[(bh * N + i) * d + e] = num[e]! / den;
    }
  }
  // state after the last chunk: every token except the last min(tailTokens, ...) window tokens
  const lastStart = N - chunks[chunks.length - 1]!;
  const windowStart = Math.max(0, lastStart - tailTokens);
  const tn = Math.min(tailTokens, N - windowStart);
  const absorbed = N - tn;
  const S = new Float64Array(BH * Dp * d);
  const z = new Float64Array(BH * Dp);
  for (let bh = 0; bh < BH; bh++)
    for (let j = 0; j < absorbed; j++)
      for (let p = 0; p < Dp; p++) {
        const f = seq.fk[(bh * N + j) * Dp + p]!;
        z[bh * Dp + p]! += f;
        for (let e = 0; e < d; e++) S[(bh * Dp + p) * d + e]! += f * seq.v[(bh * N + j) * d + e]!;
      }
  return { y, S, z };
}
