/**
 * Resource lifetime of the student generator: every device tensor it holds between steps (the K
 * recurrent state sets on kernels+CUDA) is freed however the generation ends: done, return()
 * after chunk k (a cancelled or released job), an error inside a step, an abort. The GPU is
 * simulated on the CPU by a counting session wrapper around the real tiny model's dit_step
 * (test/support/device-ledger.ts), so this runs in CI.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  BackendError,
  LoadedModel,
  StudentGenerator,
  type GeneratedChunk,
  type GenerationRequest,
  type LoadModelOptions,
  type ModelSession,
} from '../src/index.js';
import { DeviceLedger } from './support/device-ledger.js';
import { tinyModelsDir } from './support/tiny-model.js';

const STATES_PER_STEP = 5; // S, z, k_tail, v_tail, fk_tail

describe('student generator: device state is freed on every way out (simulated device, CPU)', () => {
  let dir: string;
  // 3 chunks, 3 steps: 9 dit_step runs, 3 decoder runs.
  const req: GenerationRequest = { prompt: 'a red circle bounces', seconds: 3, seed: 5, steps: 3, guidance: 4, shift: 3 };
  const held = () => req.steps! * STATES_PER_STEP;
  const opened: StudentGenerator[] = [];

  interface Faults {
    /** Throw before dit_step run `n` (0-based; run n is chunk floor(n/3), step n%3). */
    dit?: (n: number) => void;
    /** Throw before decoder run `n` (one per chunk). */
    vae?: (n: number) => void;
  }
  async function setup(faults: Faults = {}, opts: LoadModelOptions = {}): Promise<{ gen: StudentGenerator; ledger: DeviceLedger }> {
    const ledger = new DeviceLedger();
    const instrument = (graph: string, s: ModelSession): ModelSession => {
      if (graph.startsWith('dit_step')) return ledger.wrap(s, { beforeRun: (n) => faults.dit?.(n) });
      if (graph === 'vae_decoder' && faults.vae) return failing(s, faults.vae);
      return s;
    };
    const gen = new StudentGenerator(await LoadedModel.load(dir, { ...opts, verify: false, instrument }));
    opened.push(gen);
    return { gen, ledger };
  }
  const released = (ledger: DeviceLedger) => {
    assert.equal(ledger.live, 0, `still on the device: ${ledger.liveNames().join(', ')}`);
    assert.equal(ledger.released, ledger.allocated);
  };

  before(async () => {
    dir = join(await tinyModelsDir(), 'tiny-test');
    const fps = (await LoadedModel.load(dir, { verify: false })).info(true).fps;
    req.seconds = 24 / fps;
  });
  after(async () => {
    for (const g of opened) await g.close();
  });

  it('complete run: K state sets live while paused at a chunk, none after; same frames as host states; checkpoints read the device', async () => {
    const { gen, ledger } = await setup();
    const frames: Uint8Array[] = [];
    let saved: Uint8Array | undefined;
    for await (const c of gen.generate(req)) {
      assert.equal(ledger.live, held(), `paused at chunk ${c.index}: one state set per step`);
      if (c.index === 0) saved = c.checkpoint!();
      frames.push(c.frames.data);
    }
    assert.equal(ledger.allocated, 3 * held());
    released(ledger);

    const plain = await setup();
    const want: Uint8Array[] = [];
    for await (const c of plain.gen.generate(req)) want.push(c.frames.data);
    assert.ok(Buffer.concat(frames).equals(Buffer.concat(want)), 'the simulated device changes nothing but where the state lives');

    const rest: Uint8Array[] = [];
    for await (const c of gen.generate(req, { resumeFrom: saved! })) rest.push(c.frames.data);
    assert.ok(Buffer.concat(rest).equals(Buffer.concat(want.slice(1))), 'resume from a checkpoint of device state');
    released(ledger);
  });

  for (const k of [0, 1, 2]) {
    it(`return() after chunk ${k} frees the state (a cancelled or released job); its checkpoint then refuses`, async () => {
      const { gen, ledger } = await setup();
      const it_ = gen.generate(req);
      let chunk: GeneratedChunk | undefined;
      for (let i = 0; i <= k; i++) chunk = (await it_.next()).value as GeneratedChunk;
      assert.equal(ledger.live, held());
      await it_.return(undefined);
      released(ledger);
      assert.throws(() => chunk!.checkpoint!(), /after the generator moved on/);
    });
  }

  it('break out of for await (the iterator protocol calls return()) frees the state', async () => {
    const { gen, ledger } = await setup();
    for await (const c of gen.generate(req)) if (c.index === 1) break;
    released(ledger);
  });

  it('an error in dit_step at chunk 1 (step 2) rejects with it and frees the state', async () => {
    const boom = new Error('injected: dit_step failed');
    const { gen, ledger } = await setup({
      dit: (n) => {
        if (n === 4) throw boom;
      },
    });
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const c of gen.generate(req)) seen.push(c.index);
      })(),
      (e) => e === boom,
    );
    assert.deepEqual(seen, [0]);
    assert.ok(ledger.allocated > held(), 'chunk 1 had replaced some state sets on the device');
    released(ledger);
  });

  it('an error in the decoder at chunk 1 (after all its steps) frees the state', async () => {
    const { gen, ledger } = await setup({
      vae: (n) => {
        if (n === 1) throw new Error('injected: decoder failed');
      },
    });
    await assert.rejects(drain(gen.generate(req)), /decoder failed/);
    assert.equal(ledger.allocated, 2 * held());
    released(ledger);
  });

  it('an error thrown by onStep, and an abort, free the state', async () => {
    const { gen, ledger } = await setup();
    let steps = 0;
    await assert.rejects(
      drain(
        gen.generate(req, {
          onStep: () => {
            if (++steps === 5) throw new Error('injected: onStep');
          },
        }),
      ),
      /onStep/,
    );
    released(ledger);

    const ctl = new AbortController();
    steps = 0;
    await assert.rejects(
      drain(
        gen.generate(req, {
          signal: ctl.signal,
          onStep: () => {
            if (++steps === 4) ctl.abort();
          },
        }),
      ),
      (e: Error) => e.name === 'AbortError',
    );
    released(ledger);
  });

  it('the kernels addon on the CPU (custom-op graph) under the simulated device: return() after chunk 0 frees the state', async (t) => {
    let s: Awaited<ReturnType<typeof setup>>;
    try {
      s = await setup({}, { backend: 'kernels' });
    } catch (err) {
      if (/build|not built|is missing/i.test((err as Error).message)) return t.skip(`kernels addon not built: ${(err as Error).message}`);
      throw err;
    }
    const it_ = s.gen.generate(req);
    await it_.next();
    assert.equal(s.ledger.live, held());
    await it_.return(undefined);
    released(s.ledger);
  });

  it('a model whose dit_step cannot open releases the sessions it opened before; close() releases every session even if one fails', async () => {
    const broken = await mkdtemp(join(tmpdir(), 'rehyat-lifetime-'));
    try {
      await cp(dir, join(broken, 'v'), { recursive: true });
      await writeFile(join(broken, 'v', 'dit_step.onnx'), 'not an onnx graph');
      const releasedGraphs: string[] = [];
      await assert.rejects(
        LoadedModel.load(join(broken, 'v'), { verify: false, instrument: (graph, s) => counting(graph, s, releasedGraphs) }),
        (e) => e instanceof BackendError,
      );
      assert.deepEqual(releasedGraphs.sort(), ['text_encoder', 'vae_decoder']);
    } finally {
      await rm(broken, { recursive: true, force: true });
    }

    const releasedGraphs: string[] = [];
    const m = await LoadedModel.load(dir, {
      verify: false,
      instrument: (graph, s) => {
        const c = counting(graph, s, releasedGraphs);
        if (graph !== 'text_encoder') return c;
        return { ...c, release: async () => {
          await c.release();
          throw new Error('injected: release failed');
        } };
      },
    });
    await assert.rejects(m.close(), /release failed/);
    assert.deepEqual(releasedGraphs.sort(), ['dit_step', 'text_encoder', 'vae_decoder']);
  });
});

async function drain(g: AsyncGenerator<GeneratedChunk>): Promise<void> {
  for await (const _ of g);
}

function failing(s: ModelSession, before: (n: number) => void): ModelSession {
  let n = 0;
  return {
    inputNames: s.inputNames,
    outputNames: s.outputNames,
    run: async (feeds, keep) => {
      before(n++);
      return s.run(feeds, keep);
    },
    release: () => s.release(),
  };
}

function counting(graph: string, s: ModelSession, releasedGraphs: string[]): ModelSession {
  return {
    inputNames: s.inputNames,
    outputNames: s.outputNames,
    run: (feeds, keep) => s.run(feeds, keep),
    release: async () => {
      await s.release();
      releasedGraphs.push(graph);
    },
  };
}
