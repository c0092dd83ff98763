/**
 * The one tolerance rule of the kernels chain of trust (the same in C++, TS and Python):
 * `maxAbs = max|a - e|`, `relRms = sqrt(sum (a - e)^2 / sum e^2)`; a comparison passes when
 * `relRms <= tol` and `maxAbs <= tol * max(1, max|e|)`, and no element is NaN.
 */
export interface Closeness {
  maxAbs: number;
  relRms: number;
  refMaxAbs: number;
  ok: boolean;
}

export function closeness(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): Closeness {
  if (actual.length !== expected.length) throw new RangeError(`length ${actual.length} != ${expected.length}`);
  let maxAbs = 0;
  let num = 0;
  let den = 0;
  let refMaxAbs = 0;
  let nan = false;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(a) || Number.isNaN(e)) nan = true;
    const diff = Math.abs(a - e);
    if (diff > maxAbs) maxAbs = diff;
    num += diff * diff;
    den += e * e;
    if (Math.abs(e) > refMaxAbs) refMaxAbs = Math.abs(e);
  }
  const relRms = den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
  return { maxAbs, relRms, refMaxAbs, ok: !nan && relRms <= tol && maxAbs <= tol * Math.max(1, refMaxAbs) };
}
