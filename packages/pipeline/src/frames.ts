import type { RgbFrames } from './generator.js';
import type { HostTensor } from './tensor.js';

/**
 * Decoder output `[1, 3, F, H, W]` (float32, about [-1, 1]) -> packed RGB24 frames:
 * `u8 = clamp(round((x + 1) * 127.5), 0, 255)`.
 */
export function decoderOutputToRgb(t: HostTensor): RgbFrames {
  if (t.type !== 'float32') throw new TypeError(`decoder output must be float32, got ${t.type}`);
  const [b, c, f, h, w] = t.dims;
  if (t.dims.length !== 5 || b !== 1 || c !== 3) throw new RangeError(`decoder output must be [1, 3, F, H, W], got [${t.dims.join(', ')}]`);
  const src = t.data as Float32Array;
  const plane = h! * w!;
  const out = new Uint8Array(f! * plane * 3);
  for (let ch = 0; ch < 3; ch++) {
    for (let fi = 0; fi < f!; fi++) {
      const base = (ch * f! + fi) * plane;
      const dst = fi * plane * 3 + ch;
      for (let p = 0; p < plane; p++) {
        const v = Math.round((src[base + p]! + 1) * 127.5);
        out[dst + p * 3] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return { width: w!, height: h!, count: f!, data: out };
}
