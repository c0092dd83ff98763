/**
 * Flow-matching sampler (rectified flow, as in Wan2.1): `x_σ = (1 - σ) x0 + σ ε`, the model
 * predicts the velocity `v = ε - x0`, and an Euler step moves `x ← x + (σ_next - σ) v` from
 * σ = 1 (noise) to σ = 0 (data).
 *
 * Time shift: `σ' = s σ / (1 + (s - 1) σ)` on a uniform grid of `steps + 1` points from 1 to 0;
 * shift > 1 spends more steps at high noise.
 *
 * Classifier-free guidance: `v = v_u + g (v_c - v_u)`; the conditional and unconditional branches
 * run as one batch of 2 (batch index 0 = conditional, 1 = unconditional), each with its own
 * recurrent state. With g = 1 only the conditional branch runs.
 */

/** The σ grid: `steps + 1` values from 1 down to 0. */
export function sigmaSchedule(steps: number, shift: number): Float64Array {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be a positive integer, got ${steps}`);
  if (!(shift > 0)) throw new RangeError(`shift must be positive, got ${shift}`);
  const out = new Float64Array(steps + 1);
  for (let i = 0; i <= steps; i++) {
    const s = 1 - i / steps;
    out[i] = (shift * s) / (1 + (shift - 1) * s);
  }
  return out;
}

/** In place: `x += dt * v` where `v` is the guided velocity. */
export function eulerStep(x: Float32Array, v: Float32Array, dt: number): void {
  for (let i = 0; i < x.length; i++) x[i] = x[i]! + dt * v[i]!;
}

/**
 * Guided velocity from a batch-of-2 model output `[cond..., uncond...]` (each `n` elements):
 * `v_u + g (v_c - v_u)`. A batch of 1 (no guidance) is returned as is.
 */
export function guide(out: Float32Array, n: number, guidance: number): Float32Array {
  if (out.length === n) return out;
  if (out.length !== 2 * n) throw new RangeError(`model output has ${out.length} elements, expected ${n} or ${2 * n}`);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const c = out[i]!;
    const u = out[n + i]!;
    v[i] = u + guidance * (c - u);
  }
  return v;
}

/** Whether classifier-free guidance needs the unconditional branch. */
export function usesGuidance(guidance: number): boolean {
  return guidance !== 1;
}
