/**
 * The released model in models/<version>/ (skipped when none is installed): loads with its hashes
 * verified, generates deterministically, and resumes bit-exactly from a checkpoint.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { LoadedModel, StudentGenerator, type GeneratedChunk, type GenerationRequest } from '../src/index.js';

const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
const versions = existsSync(MODELS) ? readdirSync(MODELS).filter((d) => existsSync(join(MODELS, d, 'manifest.json'))) : [];

describe('released model (models/<version>, onnxruntime-node CPU)', { skip: versions.length === 0 ? 'no model under models/' : false }, () => {
  it('generates 2 chunks deterministically and resumes from the first checkpoint bit-exactly', async () => {
    const g = new StudentGenerator(await LoadedModel.load(join(MODELS, versions[0]!)));
    const req: GenerationRequest = { prompt: 'a red circle bounces on a blue background', seconds: (2 * g.info.chunkFrames(1)) / g.info.fps, seed: 3 };
    const run = async (opts = {}) => {
      const out: (GeneratedChunk & { saved?: Uint8Array })[] = [];
      for await (const c of g.generate(req, opts)) out.push({ ...c, ...(c.checkpoint ? { saved: c.checkpoint() } : {}) });
      return out;
    };
    const a = await run();
    assert.equal(a.length, 2);
    assert.deepEqual([a[0]!.frames.width, a[0]!.frames.height], [g.info.width, g.info.height]);
    const b = await run({ resumeFrom: a[0]!.saved });
    assert.equal(b.length, 1);
    assert.ok(Buffer.from(b[0]!.frames.data).equals(Buffer.from(a[1]!.frames.data)), 'resumed chunk equals the uninterrupted one');
    await g.close();
  });
});
