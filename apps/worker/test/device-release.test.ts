/**
 * The worker frees the generator's device state on every way a job ends: completed, cancelled
 * mid-video, failed by an error inside a denoising step, released by SIGTERM (then resumed). The
 * tiny real-architecture model runs with its dit_step behind a counting stand-in for the GPU
 * (packages/pipeline/test/support/device-ledger.ts: the recurrent state stays "on the device"
 * between steps, as with kernels+CUDA), against real Redis, Postgres, S3 and ffmpeg. The ledger is
 * read once the job's terminal event (or its release) is visible.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { requestCancel } from '@rehyat/events';
import { LoadedModel, StudentGenerator } from '@rehyat/pipeline';
import { InvalidJobError } from '../src/failure.js';
import type { GeneratorProvider } from '../src/processors/generate.js';
import { startHarness, terminal, type Harness } from './support/harness.js';
import { DeviceLedger } from '../../../packages/pipeline/test/support/device-ledger.js';
import { tinyModelsDir } from '../../../packages/pipeline/test/support/tiny-model.js';

describe('device state is released on every way a job ends (tiny real model, simulated device)', () => {
  let h: Harness;
  let gen: StudentGenerator;
  let ledger: DeviceLedger;
  /** Throws before dit_step run `n` of the current ledger's session, when set. */
  let fault: ((n: number) => void) | undefined;
  let runs = 0;
  const model = { name: '', width: 0, height: 0 };
  const provider: GeneratorProvider = {
    async get(name) {
      if (name !== model.name) throw new InvalidJobError(`unknown model ${name}`);
      return gen;
    },
  };
  const released = () => {
    assert.ok(ledger.allocated > 0, 'the state lived on the (simulated) device');
    assert.equal(ledger.live, 0, `still on the device: ${ledger.liveNames().join(', ')}`);
    assert.equal(ledger.released, ledger.allocated);
  };
  const submit = (seconds: number, attempts?: number) =>
    h.submit({ model: model.name, width: model.width, height: model.height, seconds, steps: 2, guidance: 4 }, attempts ? { attempts } : {});

  before(async () => {
    const models = await tinyModelsDir();
    ledger = new DeviceLedger();
    const m = await LoadedModel.load(join(models, 'tiny-test'), {
      verify: false,
      // One wrapped session whose ledger each test replaces (a fresh count per job).
      instrument: (graph, s) => {
        if (!graph.startsWith('dit_step')) return s;
        return {
          inputNames: s.inputNames,
          outputNames: s.outputNames,
          run: (feeds, keep) => {
            const n = runs++;
            return ledger.wrap(s, { beforeRun: () => fault?.(n) }).run(feeds, keep);
          },
          release: () => s.release(),
        };
      },
    });
    gen = new StudentGenerator(m);
    Object.assign(model, { name: m.files.manifest.models.student, width: gen.info.width, height: gen.info.height });
    h = await startHarness();
  });
  afterEach(async () => {
    await h.stopWorkers();
  });
  after(async () => {
    await h?.close();
    await gen?.close();
  });
  const reset = () => {
    ledger = new DeviceLedger();
    fault = undefined;
    runs = 0;
  };

  it('completed: nothing left on the device', async () => {
    reset();
    const w = await h.start(provider);
    const p = await submit(2);
    const events = await h.waitFor(p.video_id, terminal);
    assert.equal(events.at(-1)!.type, 'video.completed', JSON.stringify(events.at(-1)));
    released();
    await w.shutdown();
  });

  it('cancelled mid-video: nothing left on the device once video.cancelled is visible', async () => {
    reset();
    const w = await h.start(provider);
    const p = await submit(30);
    await h.waitFor(p.video_id, (ev) => ev.some((e) => e.type === 'video.chunk'));
    await requestCancel(h.redis, h.keyspace, p.video_id);
    const events = await h.waitFor(p.video_id, terminal);
    assert.equal(events.at(-1)!.type, 'video.cancelled');
    const chunks = events.filter((e) => e.type === 'video.chunk').length;
    assert.ok(chunks >= 1 && chunks < 30, `${chunks} chunks shipped`);
    released();
    await w.shutdown();
  });

  it('an error inside a denoising step of chunk 1 fails the video and frees the state', async () => {
    reset();
    // 2 steps per chunk: run 3 is chunk 1, step 2 (chunk 0 shipped, chunk 1 half-denoised).
    fault = (n) => {
      if (n === 3) throw new Error('injected: dit_step failed');
    };
    const w = await h.start(provider);
    const p = await submit(4, 1);
    const events = await h.waitFor(p.video_id, terminal);
    assert.equal(events.at(-1)!.type, 'video.failed');
    assert.match(JSON.stringify(events.at(-1)!.data), /injected: dit_step failed/);
    released();
    await w.shutdown();
  });

  it('SIGTERM (shutdown) releases the job after a chunk with the state freed; the resumed job completes with nothing left', async () => {
    reset();
    const w1 = await h.start(provider);
    const p = await submit(6);
    await h.waitFor(p.video_id, (ev) => ev.some((e) => e.type === 'video.chunk'));
    await w1.shutdown();
    assert.equal(await (await h.queue.getJob(p.video_id))!.getState(), 'waiting', 'released back to the queue');
    released();

    const w2 = await h.start(provider);
    const events = await h.waitFor(p.video_id, terminal);
    assert.equal(events.at(-1)!.type, 'video.completed', JSON.stringify(events.at(-1)));
    released();
    await w2.shutdown();
  });
});
