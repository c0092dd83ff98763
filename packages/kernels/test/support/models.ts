// Builds the test models once per process with python3 + onnx (scripts/make-test-models.py).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const script = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'make-test-models.py');
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
    if (!existsSync(join(dir, 'add_f32.onnx'))) execFileSync(python(), [script, dir], { stdio: 'inherit' });
  }
  return join(dir, name);
}
