// The golden fixtures exported by training (training/fixtures/hybrid_attention/*.json, written
// from training/rehyat/attention/naive.py): every step's six outputs, CPU (and CUDA with
// REHYAT_TEST_CUDA=1), float32 at 1e-5.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

import { closeness, createSession, type HostTensor } from '../src/index.js';
import { model } from './support/models.js';

const dir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'training', 'fixtures', 'hybrid_attention');
const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).sort() : [];
const providers: ('cpu' | 'cuda')[] = process.env['REHYAT_TEST_CUDA'] === '1' ? ['cpu', 'cuda'] : ['cpu'];

interface Json {
  shape: number[];
  dtype: 'float32';
  data: number[];
}
interface Fixture {
  attributes: { tail_tokens: number; scale: number };
  geometry: { d: number };
  steps: { inputs: Record<string, Json>; outputs: Record<string, Json> }[];
}

for (const provider of providers)
  describe(`golden fixtures from training (${provider})`, { skip: files.length === 0 && `no fixtures in ${dir}` }, () => {
    for (const f of files)
      it(f, async () => {
        const fx = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Fixture;
        assert.ok(Math.abs(fx.attributes.scale - 1 / Math.sqrt(fx.geometry.d)) < 1e-7, 'fixture uses a non-default scale');
        const s = await createSession(model(`ha_f32_t${fx.attributes.tail_tokens}.onnx`), { provider });
        for (const [i, step] of fx.steps.entries()) {
          const feeds: Record<string, HostTensor> = {};
          for (const [name, t] of Object.entries(step.inputs))
            feeds[name] = { type: 'float32', dims: t.shape, data: Float32Array.from(t.data) };
          const out = await s.run(feeds);
          for (const [name, t] of Object.entries(step.outputs)) {
            const got = out[name] as HostTensor;
            assert.deepEqual(got.dims, t.shape, `step ${i} ${name} shape`);
            const c = closeness(got.data as Float32Array, t.data, 1e-5);
            assert.ok(c.ok, `step ${i} ${name}: maxAbs ${c.maxAbs.toExponential(2)} relRms ${c.relRms.toExponential(2)}`);
          }
        }
        s.release();
      });
  });
