/**
 * Deterministic noise with a serializable state, identical on every platform and backend.
 *
 * - Generator: xoshiro128** (Blackman & Vigna, 2018; 32-bit words, period 2^128 - 1).
 * - Seeding: the 4 state words are 4 successive outputs of splitmix32 started at `seed`
 *   (`z += 0x9e3779b9; z = (z ^ z>>>16) * 0x21f0aaad; z = (z ^ z>>>15) * 0x735a2d97; z ^= z>>>15`).
 * - Uniforms: `u = (x + 0.5) / 2^32`, strictly inside (0, 1).
 * - Normals: Box-Muller on two uniforms, both outputs used (`r cos θ` first, then `r sin θ`);
 *   the unused second one is part of the state.
 * Computed in float64, stored as float32.
 */
export interface RngState {
  s: [number, number, number, number];
  /** The pending second Box-Muller output, or null. */
  spare: number | null;
}

export class NoiseRng {
  #s: Uint32Array;
  #spare: number | null;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`seed must be an integer in 0..2^32-1, got ${seed}`);
    let z = seed >>> 0;
    const s = new Uint32Array(4);
    for (let i = 0; i < 4; i++) {
      z = (z + 0x9e3779b9) >>> 0;
      let t = z;
      t = Math.imul(t ^ (t >>> 16), 0x21f0aaad);
      t = Math.imul(t ^ (t >>> 15), 0x735a2d97);
      s[i] = (t ^ (t >>> 15)) >>> 0;
    }
    if (s.every((w) => w === 0)) s[0] = 1;
    this.#s = s;
    this.#spare = null;
  }

  static fromState(state: RngState): NoiseRng {
    const r = new NoiseRng(0);
    r.#s = Uint32Array.from(state.s);
    r.#spare = state.spare;
    return r;
  }

  state(): RngState {
    const [a, b, c, d] = this.#s;
    return { s: [a!, b!, c!, d!], spare: this.#spare };
  }

  /** Next 32-bit unsigned output. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  uniform(): number {
    return (this.nextUint32() + 0.5) / 4294967296;
  }

  normal(): number {
    if (this.#spare !== null) {
      const v = this.#spare;
      this.#spare = null;
      return v;
    }
    const u1 = this.uniform();
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.#spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** `n` standard normal samples as float32. */
  normals(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal();
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
