import assert from 'node:assert/strict';
import { readFile, writeFile, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  LoadedModel,
  ModelRegistry,
  ModelUnavailableError,
  StudentGenerator,
  TeacherGenerator,
  UnknownModelError,
  type GeneratedChunk,
  type GenerationRequest,
  type Generator,
} from '../src/index.js';
import { tinyModelsDir } from './support/tiny-model.js';

/** A chunk with its checkpoint taken while the generator was paused at it (as the worker does). */
type Collected = GeneratedChunk & { saved?: Uint8Array };
async function collect(g: Generator, req: GenerationRequest, opts = {}): Promise<Collected[]> {
  const out: Collected[] = [];
  for await (const c of g.generate(req, opts)) out.push({ ...c, ...(c.checkpoint ? { saved: c.checkpoint() } : {}) });
  return out;
}
const joined = (chunks: GeneratedChunk[]) => Buffer.concat(chunks.map((c) => c.frames.data));

describe('student and teacher on the tiny exported model (onnxruntime-node, CPU)', () => {
  let models: string;
  let dir: string;
  let student: StudentGenerator;
  let teacher: TeacherGenerator;
  // 3 chunks of 8 frames at the model's fps (set in before()).
  const req: GenerationRequest = { prompt: 'a red circle bounces', seconds: 3, seed: 5, steps: 3, guidance: 4, shift: 3 };
  let fps = 8;

  before(async () => {
    models = await tinyModelsDir();
    dir = join(models, 'tiny-test');
    student = new StudentGenerator(await LoadedModel.load(dir));
    teacher = new TeacherGenerator(await LoadedModel.load(dir, { student: false, teacher: true }));
    fps = student.info.fps;
    req.seconds = 24 / fps;
  });
  after(async () => {
    await student?.close();
    await teacher?.close();
  });

  it('yields chunks of decoded frames with checkpoints, deterministic per seed', async () => {
    const a = await collect(student, req);
    assert.equal(a.length, 3);
    assert.deepEqual(a.map((c) => [c.index, c.startFrame, c.frames.count, c.frames.width, c.frames.height]), [
      [0, 0, 8, 32, 32],
      [1, 8, 8, 32, 32],
      [2, 16, 8, 32, 32],
    ]);
    assert.ok(a.every((c) => c.saved && c.saved.length > 0));
    const b = await collect(student, req);
    assert.ok(joined(a).equals(joined(b)), 'same seed, same frames');
    const c = await collect(student, { ...req, seed: 6 });
    assert.ok(!joined(a).equals(joined(c)), 'another seed, other frames');
  });

  it('equals the PyTorch chunk-major reference from the same noise (training/rehyat/sampling.py)', async () => {
    const ref = JSON.parse(await readFile(join(dir, 'reference.json'), 'utf8')) as { prompt: string; seed: number; steps: number; shift: number; guidance: number; frames: number };
    const want = await readFile(join(dir, 'reference_frames.rgb'));
    const got = joined(await collect(student, { prompt: ref.prompt, seed: ref.seed, steps: ref.steps, shift: ref.shift, guidance: ref.guidance, seconds: ref.frames / fps }));
    assert.equal(got.length, want.length);
    let maxDiff = 0;
    for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
    assert.ok(maxDiff <= 1, `max abs difference ${maxDiff} (uint8; fp32 rounding may flip one level)`);
  });

  it('resuming from any chunk checkpoint yields exactly the frames of an uninterrupted run', async () => {
    const full = await collect(student, req);
    for (const k of [0, 1]) {
      const rest = await collect(student, req, { resumeFrom: full[k]!.saved });
      assert.deepEqual(rest.map((c) => c.index), full.slice(k + 1).map((c) => c.index));
      assert.ok(joined(rest).equals(joined(full.slice(k + 1))), `resume after chunk ${k}`);
    }
    const none = await collect(student, req, { resumeFrom: full[2]!.saved });
    assert.equal(none.length, 0, 'nothing left after the last chunk');
  });

  it('a checkpoint is a snapshot taken while paused at its chunk: later chunks leave it unchanged; asked for late, it throws', async () => {
    const it_ = student.generate(req);
    const first = (await it_.next()).value as GeneratedChunk;
    const snap = first.checkpoint!();
    const copy = Buffer.from(snap);
    const second = (await it_.next()).value as GeneratedChunk;
    assert.throws(() => first.checkpoint!(), /after the generator moved on/);
    assert.ok(Buffer.from(snap).equals(copy), 'the next chunk did not write into the snapshot');
    assert.ok(!Buffer.from(second.checkpoint!()).equals(copy), 'the next chunk has its own state');
    await it_.return(undefined);
    const rest = await collect(student, req, { resumeFrom: snap });
    const full = await collect(student, req);
    assert.ok(joined(rest).equals(joined(full.slice(1))), 'resumes like an uninterrupted run');
  });

  it('extend continues from the final state with a new prompt; a checkpoint of another request is refused', async () => {
    const full = await collect(student, req);
    const ext = await collect(student, { ...req, prompt: 'a blue square moves left', seconds: 16 / fps }, { resumeFrom: full[2]!.saved, resumeMode: 'extend' });
    assert.deepEqual(ext.map((c) => [c.index, c.startFrame]), [[3, 24], [4, 32]]);
    await assert.rejects(collect(student, { ...req, seed: 9 }, { resumeFrom: full[0]!.saved }), /another request/);
    await assert.rejects(collect(student, { ...req, steps: 4 }, { resumeFrom: full[0]!.saved }), /steps=3/);
  });

  it('an AbortSignal stops generation between denoising steps', async () => {
    const ctl = new AbortController();
    let steps = 0;
    await assert.rejects(
      collect(student, req, {
        signal: ctl.signal,
        onStep: () => {
          if (++steps === 2) ctl.abort();
        },
      }),
      (e: Error) => e.name === 'AbortError',
    );
    assert.equal(steps, 2, 'no step ran after the abort');
  });

  it('the teacher generates the whole video at once: same geometry, no checkpoints', async () => {
    const t = await collect(teacher, req);
    assert.deepEqual(t.map((c) => [c.index, c.frames.count]), [[0, 8], [1, 8], [2, 8]]);
    assert.ok(t.every((c) => c.checkpoint === undefined));
    assert.equal(teacher.info.resumable, false);
    await assert.rejects(collect(teacher, { ...req, seconds: 9 }), /at most 8 s/);
  });

  it('the kernels backend (custom-op graph, CPU) gives the same video as onnxruntime-node', async (t) => {
    let k: StudentGenerator;
    try {
      k = new StudentGenerator(await LoadedModel.load(dir, { backend: 'kernels' }));
    } catch (err) {
      if (/build|not built|is missing/i.test((err as Error).message)) return t.skip(`kernels addon not built: ${(err as Error).message}`);
      throw err;
    }
    const a = joined(await collect(student, req));
    const b = joined(await collect(k, req));
    await k.close();
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    assert.ok(maxDiff <= 1, `max abs difference ${maxDiff}`);
  });

  it('registry: public names from manifests; unknown names and missing files are clear errors', async () => {
    const reg = new ModelRegistry({ modelsDir: models });
    assert.deepEqual((await reg.names()).sort(), ['rehyat-tiny', 'rehyat-tiny-teacher']);
    await assert.rejects(reg.get('sora-2'), (e: Error) => e instanceof UnknownModelError && /rehyat-tiny/.test(e.message));
    assert.ok((await reg.get('rehyat-tiny')) instanceof StudentGenerator);
    await reg.close();

    const broken = await mkdtemp(join(tmpdir(), 'rehyat-broken-'));
    await cp(dir, join(broken, 'v'), { recursive: true });
    await rm(join(broken, 'v', 'dit_step.onnx'));
    const reg2 = new ModelRegistry({ modelsDir: broken });
    await assert.rejects(reg2.get('rehyat-tiny'), (e: Error) => e instanceof ModelUnavailableError && /dit_step\.onnx/.test(e.message));
    await writeFile(join(broken, 'v', 'dit_step.onnx'), 'corrupt');
    await assert.rejects(new ModelRegistry({ modelsDir: broken }).get('rehyat-tiny'), /dit_step\.onnx has 7 bytes/);
    await rm(broken, { recursive: true, force: true });
  });
});
