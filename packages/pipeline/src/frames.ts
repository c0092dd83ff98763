import type { RgbFrames } from './generator.js';
import type { HostTensor } from './tensor.js';

/**
 * VAE decoder output `frames`, float32 `[1, F, H, W, 3]` RGB in [0, 1] (see
 * training/rehyat/export/graphs.py) -> packed RGB24: `u8 = clamp(round(x * 255), 0, 255)`.
 */
export function decoderOutputToRgb(t: HostTensor): RgbFrames {
  if (t.type !== 'float32') throw new TypeError(`decoder output must be float32, got ${t.type}`);
  const [b, f, h, w, c] = t.dims;
  if (t.dims.length !== 5 || b !== 1 || c !== 3) throw new RangeError(`decoder output must be [1, F, H, W, 3], got [${t.dims.join(', ')}]`);
  const src = t.data as Float32Array;
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = Math.round(src[i]! * 255);
    out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return { width: w!, height: h!, count: f!, data: out };
}
