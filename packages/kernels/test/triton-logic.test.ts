// The Triton source of the float16 fast path (ops/hybrid_attention/hybrid_attention_triton.py) run
// on the CPU through a numpy stand-in of triton.language (test/support/triton_logic.py): indexing,
// masks, the [tail; chunk] segments and the leaving-token split against float64, at the generator's
// tile sizes. Logic only: the compiled kernels are checked on the GPU (REHYAT_TEST_CUDA=1 suites,
// bench/triton_check.py). Skipped when no python3 with numpy is found.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

function findScript(): string | undefined {
  let d = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    for (const c of [join(d, 'test', 'support', 'triton_logic.py'), join(d, 'support', 'triton_logic.py')])
      if (existsSync(c)) return c;
    const up = resolve(d, '..');
    if (up === d) return undefined;
    d = up;
  }
}

function pythonWithNumpy(): string | undefined {
  const candidates = [process.env['PYTHON'], 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
  for (const p of candidates) {
    try {
      execFileSync(p, ['-c', 'import numpy'], { stdio: 'ignore' });
      return p;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

const script = findScript();
const python = script ? pythonWithNumpy() : undefined;

describe('Triton kernels, logic on the CPU (numpy stand-in)', { skip: !python && 'no python3 with numpy or script' }, () => {
  it('window attention and state update match the float64 form on odd shapes', () => {
    const r = spawnSync(python!, [script!], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /10 passed, 0 failed/);
  });
});
