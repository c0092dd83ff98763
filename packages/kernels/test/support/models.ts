// Builds the test models once per process with python3 + onnx (scripts/make-test-models.py).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// the package root is the first directory upwards holding scripts/make-test-models.py (from
// test/support/ in the sources, from .gpu-bundle/ in the bundled tests)
function findScript(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const s = join(d, 'scripts', 'make-test-models.py');
    if (existsSync(s)) return s;
    const up = resolve(d, '..');
    if (up === d) throw new Error('scripts/make-test-models.py not found above the tests');
    d = up;
  }
}
const script = findScript();
let dir: string | undefined;

function python(): string {
  const candidates = [process.env['PYTHON'], 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
  for (const p of candidates) {
    try {
      execFileSync(p, ['-c', 'import onnx'], { stdio: 'ignore' });
      return p;
    } catch {
      // try the next one
    }
  }
  throw new Error(`no python3 with the onnx package among ${candidates.join(', ')} (apt-get install python3-onnx)`);
}

/** Path of a test model (see scripts/make-test-models.py for the names). */
export function model(name: string): string {
  if (!dir) {
    dir = process.env['REHYAT_TEST_MODELS_DIR'] ?? mkdtempSync(join(tmpdir(), 'rehyat-kernels-models-'));
    if (!existsSync(join(dir, 'add_f32.onnx'))) {
      // test files run in parallel processes: write privately, then rename file by file (atomic)
      mkdirSync(dir, { recursive: true });
      const tmp = mkdtempSync(join(dir, '.tmp-'));
      execFileSync(python(), [script, tmp], { stdio: 'inherit' });
      for (const f of readdirSync(tmp).sort((a, b) => (a === 'add_f32.onnx' ? 1 : b === 'add_f32.onnx' ? -1 : 0)))
        renameSync(join(tmp, f), join(dir, f));
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return join(dir, name);
}
