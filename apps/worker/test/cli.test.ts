import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { probeVideo } from '../src/media/index.js';
import { tinyModelsDir } from '../../../packages/pipeline/test/support/tiny-model.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../src/cli/rehyat.ts', import.meta.url));
const cli = (args: string[]) =>
  run(process.execPath, ['--import', 'tsx', '--conditions=development', CLI, ...args], { cwd: fileURLToPath(new URL('..', import.meta.url)) });

describe('rehyat generate (in-process CLI, tiny real-architecture model, CPU)', () => {
  let models: string;
  let dir: string;
  before(async () => {
    models = await tinyModelsDir();
    dir = await mkdtemp(join(tmpdir(), 'rehyat-cli-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('writes a faststart MP4 of the requested length', async () => {
    const out = join(dir, 'a.mp4');
    const { stderr } = await cli(['generate', 'a red circle bounces on a blue background', '--seconds', '2', '--out', out, '--models-dir', models, '--seed', '3']);
    assert.match(stderr, /32 frames, 32x32 @ 16 fps/);
    const p = await probeVideo(out);
    assert.deepEqual([p.frames, p.width, p.height, p.fps], [32, 32, 32, 16]);
  });

  it('clear failures: no model installed, unknown model, bad option', async () => {
    await assert.rejects(cli(['generate', 'x', '--models-dir', join(dir, 'none')]), (e: { code: number; stderr: string }) => e.code === 2 && /no model installed/.test(e.stderr));
    await assert.rejects(cli(['generate', 'x', '--models-dir', models, '--model', 'nope']), (e: { code: number; stderr: string }) => e.code === 1 && /'nope' is not installed/.test(e.stderr));
    await assert.rejects(cli(['generate', 'x', '--models-dir', models, '--seconds', 'abc']), (e: { code: number; stderr: string }) => e.code === 2 && /--seconds must be/.test(e.stderr));
    await assert.rejects(cli(['frobnicate']), (e: { code: number; stderr: string }) => e.code === 2 && /usage: rehyat generate/.test(e.stderr));
  });
});
