import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('./export_tiny.py', import.meta.url));
const TRAINING = fileURLToPath(new URL('../../../../training/rehyat/', import.meta.url));

/**
 * Folder of the tiny test model (`<dir>/tiny-test/manifest.json`): exported with
 * /usr/bin/python3 (python3-torch, python3-onnx) from the real training code, cached in the temp
 * folder under a hash of the exporter and the model sources.
 */
export async function tinyModelsDir(): Promise<string> {
  const hash = createHash('sha256');
  hash.update(await readFile(SCRIPT));
  for (const sub of ['dit', 'vae', 'text', 'attention']) {
    for (const f of (await readdir(join(TRAINING, sub))).filter((n) => n.endsWith('.py')).sort()) hash.update(await readFile(join(TRAINING, sub, f)));
  }
  hash.update(await readFile(join(TRAINING, 'sampling.py')));
  const dir = join(tmpdir(), `rehyat-tiny-models-${hash.digest('hex').slice(0, 16)}`);
  if (existsSync(join(dir, 'tiny-test', 'reference.json'))) return dir;
  const tmp = `${dir}.${process.pid}`;
  await run(process.env.PYTHON ?? '/usr/bin/python3', [SCRIPT, join(tmp, 'tiny-test')], { maxBuffer: 64 * 1024 * 1024 });
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return dir;
}
