// Runs every <graph>.parity.json fixture in a folder against its ONNX graph with
// onnxruntime-node (CPU) and compares with the PyTorch outputs stored in the fixture.
// usage: node training/tests/node/parity.mjs <fixtures-dir> [<models-dir>] [--skip-custom]
// Exit code 0 when every compared output is within tolerance; prints one JSON line per graph.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(join(process.cwd(), 'package.json'));
const ort = require('onnxruntime-node');
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const skipCustom = process.argv.includes('--skip-custom');
const [fixDir, modelDir = fixDir] = args;

function makeTensor(spec, prev) {
  if (spec.from) return prev[spec.from.run][spec.from.output];
  const n = spec.dims.reduce((a, b) => a * b, 1);
  if (spec.dtype === 'int64') return new ort.Tensor('int64', BigInt64Array.from(spec.values.map((v) => BigInt(v))), spec.dims);
  const data = new Float32Array(n);
  if (spec.values) data.set(spec.values);
  else for (let i = 0; i < n; i++) data[i] = spec.fill.scale * Math.sin(spec.fill.a * i + spec.fill.b);
  return new ort.Tensor('float32', data, spec.dims);
}

let failed = false;
for (const f of readdirSync(fixDir).filter((x) => x.endsWith('.parity.json')).sort()) {
  const fx = JSON.parse(readFileSync(join(fixDir, f), 'utf8'));
  if (skipCustom && fx.graph.includes('custom')) continue;
  const session = await ort.InferenceSession.create(join(modelDir, fx.graph), { executionProviders: ['cpu'] });
  const prev = [];
  let worst = 0;
  const report = { graph: fx.graph, runs: [] };
  for (const run of fx.runs) {
    const feeds = {};
    for (const [name, spec] of Object.entries(run.inputs)) feeds[name] = makeTensor(spec, prev);
    const out = await session.run(feeds);
    prev.push(out);
    const r = {};
    for (const [name, ref] of Object.entries(run.outputs)) {
      const got = out[name];
      const dimsOk = JSON.stringify(Array.from(got.dims)) === JSON.stringify(ref.dims);
      let maxErr = 0;
      let maxRef = 0;
      for (let i = 0; i < ref.values.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(got.data[i * ref.stride] - ref.values[i]));
        maxRef = Math.max(maxRef, Math.abs(ref.values[i]));
      }
      let sum = 0;
      for (let i = 0; i < got.data.length; i++) sum += got.data[i];
      const tol = fx.tolerance.atol + fx.tolerance.rtol * maxRef;
      const sumTol = 1e-4 * Math.max(1, ref.abs_sum);
      const ok = dimsOk && maxErr <= tol && Math.abs(sum - ref.sum) <= sumTol;
      if (!ok) failed = true;
      worst = Math.max(worst, maxErr);
      r[name] = { ok, dimsOk, maxErr, tol };
    }
    report.runs.push(r);
  }
  report.maxErr = worst;
  console.log(JSON.stringify(report));
}
process.exit(failed ? 1 : 0);
