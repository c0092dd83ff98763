import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { ModelRegistry, ModelUnavailableError } from '@rehyat/pipeline';
import { StorageUnavailableError } from '@rehyat/storage';
import { classifyFailure, GenerationError, InvalidJobError } from '../src/failure.js';
import type { GeneratorProvider } from '../src/processors/generate.js';
import { CUDA_FAULT_MESSAGE } from './support/ort-device-fault.js';
import { startHarness, terminal, type Harness } from './support/harness.js';
import { ScriptedGenerator } from './support/scripted-generator.js';
import { tinyModelsDir } from '../../../packages/pipeline/test/support/tiny-model.js';

describe('failure classifier', () => {
  it('device faults (CUDA runtime errors, device OOM) are device-fatal and retryable', () => {
    for (const message of [
      CUDA_FAULT_MESSAGE,
      'CUDA failure 2: out of memory ; GPU=0 ; hostname=h ; expr=cudaMalloc(&p, size);',
      'CUBLAS failure 13: CUBLAS_STATUS_EXECUTION_FAILED',
    ]) {
      const f = classifyFailure(new Error(message));
      assert.deepEqual([f.kind, f.code, f.retryable, f.message], ['device', 'device_error', true, message]);
    }
  });

  it('S3 unreachable is transient with code storage_unavailable; network errors are transient', () => {
    const s3 = classifyFailure(new StorageUnavailableError('S3 at http://127.0.0.1:1 failed: connect ECONNREFUSED 127.0.0.1:1'));
    assert.deepEqual([s3.kind, s3.code, s3.retryable], ['transient', 'storage_unavailable', true]);
    const net = classifyFailure(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' }));
    assert.deepEqual([net.kind, net.code, net.retryable], ['transient', 'internal_error', true]);
    const wrapped = classifyFailure(new Error('upload failed', { cause: new StorageUnavailableError('S3 down') }));
    assert.deepEqual([wrapped.kind, wrapped.code, wrapped.message], ['transient', 'storage_unavailable', 'upload failed']);
  });

  it('invalid requests, missing models and bad outputs are not retried', () => {
    assert.deepEqual(pick(classifyFailure(new InvalidJobError('size 1x1'))), ['invalid', 'invalid_request', false]);
    assert.deepEqual(pick(classifyFailure(new ModelUnavailableError('file x.onnx is missing'))), ['model', 'model_unavailable', false]);
    assert.deepEqual(pick(classifyFailure(new GenerationError('non-finite latents'))), ['generation', 'generation_failed', false]);
    assert.deepEqual(pick(classifyFailure(new Error('something else'))), ['internal', 'internal_error', true]);
  });

  it('DEVICE=cuda where no CUDA execution provider is installed is a configuration error (model_unavailable), not device-fatal', async () => {
    // The real error from onnxruntime-node on this machine: its CUDA provider library is absent.
    // Restarting the process cannot fix that, so it must fail the job now with a clear message
    // rather than crash-loop the worker and burn every job's attempts.
    const registry = new ModelRegistry({ modelsDir: await tinyModelsDir(), device: 'cuda' });
    let err: unknown;
    try {
      await registry.get('rehyat-tiny');
    } catch (e) {
      err = e;
    } finally {
      await registry.close();
    }
    if (err === undefined) return; // a machine with a working CUDA EP loads the model: nothing to classify
    assert.match((err as Error).message, /on cuda: .*Cuda/);
    const f = classifyFailure(err);
    assert.deepEqual(pick(f), ['model', 'model_unavailable', false]);
    assert.match(f.message, /text_encoder\.onnx on cuda/);
  });
});

function pick(f: ReturnType<typeof classifyFailure>) {
  return [f.kind, f.code, f.retryable];
}

/** Fails with a CUDA error after shipping its first chunk. */
class FaultingGenerator extends ScriptedGenerator {
  override async *generate(...args: Parameters<ScriptedGenerator['generate']>) {
    for await (const chunk of super.generate(...args)) {
      yield chunk;
      throw new Error(CUDA_FAULT_MESSAGE);
    }
  }
}

/** Fails once, after shipping its first chunk, with an error the classifier retries; then works. */
class FailsOnceGenerator extends ScriptedGenerator {
  failures = 0;
  override async *generate(...args: Parameters<ScriptedGenerator['generate']>) {
    for await (const chunk of super.generate(...args)) {
      yield chunk;
      if (this.failures++ === 0) throw new Error('connect ECONNRESET 127.0.0.1:6379');
    }
  }
}

describe('device-fatal failure in the processor (real Redis, Postgres, S3; generator double)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.stopWorkers();
  });
  after(async () => {
    await h.close();
  });

  it('calls onDeviceFatal with the error; on the last attempt the video fails with device_error and the CUDA message', async () => {
    const fatal: unknown[] = [];
    const gen = new FaultingGenerator(5);
    const provider: GeneratorProvider = { get: async () => gen };
    const w = await h.start(provider, (err) => fatal.push(err));
    const p = await h.submit({ seconds: 4 }, { attempts: 1 });
    const events = await h.waitFor(p.video_id, terminal);
    const failed = events.at(-1)!;
    assert.equal(failed.type, 'video.failed');
    assert.deepEqual(failed.data, { code: 'device_error', message: CUDA_FAULT_MESSAGE });
    assert.equal(events.filter((e) => e.type === 'video.chunk').length, 1, 'the chunk shipped before the fault stays');
    const video = await h.prisma.video.findUniqueOrThrow({ where: { id: p.video_id } });
    assert.deepEqual([video.status, video.errorCode, video.errorMessage], ['failed', 'device_error', CUDA_FAULT_MESSAGE]);
    assert.equal(fatal.length, 1);
    assert.equal((fatal[0] as Error).message, CUDA_FAULT_MESSAGE);
    const job = await h.settled(p.video_id);
    assert.equal(await job.getState(), 'failed');
    await w.shutdown();
  });

  it('a retried attempt: the video stays in progress with the attempt\'s error as last error; kept once it completes', async () => {
    const gen = new FailsOnceGenerator(5);
    const w = await h.start({ get: async () => gen });
    const p = await h.submit({ seconds: 2 }, { attempts: 2, backoff: { type: 'fixed', delay: 60_000 } });
    const end = Date.now() + 60_000;
    for (;;) {
      const j = await h.queue.getJob(p.video_id);
      if (j && j.attemptsMade === 1 && (await j.getState()) === 'delayed') break;
      if (Date.now() > end) throw new Error('the attempt did not fail into its backoff');
      await new Promise((r) => setTimeout(r, 25));
    }
    const during = await h.prisma.video.findUniqueOrThrow({ where: { id: p.video_id } });
    assert.deepEqual(
      [during.status, during.errorCode, during.errorMessage, during.lastErrorCode, during.lastErrorMessage],
      ['in_progress', null, null, 'internal_error', 'connect ECONNRESET 127.0.0.1:6379'],
    );
    assert.ok(during.lastErrorAt);
    assert.ok(!(await h.events(p.video_id)).some((e) => e.type === 'video.failed'));

    await (await h.queue.getJob(p.video_id))!.promote();
    assert.equal((await h.waitFor(p.video_id, terminal)).at(-1)!.type, 'video.completed');
    const done = await h.prisma.video.findUniqueOrThrow({ where: { id: p.video_id } });
    assert.deepEqual([done.status, done.errorCode, done.lastErrorCode], ['completed', null, 'internal_error']);
    await w.shutdown();
  });
});
