/**
 * CPU benchmark of generation (pipeline only: no encoding, no services): time to first chunk,
 * total time and frames per second for a video of SECONDS seconds, for the student on both
 * backends (onnxruntime-node standard-op graph; @rehyat/kernels custom-op graph) and the teacher.
 *
 *   npx tsx --conditions=development bench/generate-cpu.ts [modelsDir] [seconds] > bench/results/cpu.md
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { LoadedModel, StudentGenerator, TeacherGenerator, type Generator } from '../src/index.js';

const modelsDir = process.argv[2] ?? fileURLToPath(new URL('../../../models/', import.meta.url));
const seconds = Number(process.argv[3] ?? 4);
const dir = `${modelsDir.replace(/\/$/, '')}/rehyat-5`;
const prompt = 'a red circle bounces on a blue background';

async function time(name: string, make: () => Promise<Generator>): Promise<string> {
  let g: Generator;
  try {
    g = await make();
  } catch (err) {
    return `| ${name} | n/a | n/a | n/a | ${(err as Error).message.split('\n')[0]} |`;
  }
  const t0 = performance.now();
  let first = 0;
  let frames = 0;
  for await (const c of g.generate({ prompt, seconds, seed: 1 })) {
    if (!first) first = performance.now() - t0;
    frames += c.frames.count;
  }
  const total = performance.now() - t0;
  await g.close();
  return `| ${name} | ${(first / 1000).toFixed(2)} | ${(total / 1000).toFixed(2)} | ${(frames / (total / 1000)).toFixed(2)} | ${frames} frames |`;
}

const rows = [
  await time('student, ort (dit_step.onnx)', async () => new StudentGenerator(await LoadedModel.load(dir))),
  await time('student, kernels (dit_step_custom.onnx)', async () => new StudentGenerator(await LoadedModel.load(dir, { backend: 'kernels' }))),
  await time('teacher, ort (teacher_dit.onnx)', async () => new TeacherGenerator(await LoadedModel.load(dir, { student: false, teacher: true }))),
];
const m = (await LoadedModel.load(dir, { student: false })).files.manifest;
console.log(`# CPU generation benchmark (${new Date().toISOString()})

Model ${m.version} (${m.video.width}x${m.video.height} @ ${m.video.fps} fps, ${m.sampler.steps} steps, guidance ${m.sampler.guidance}),
${seconds} s video, seed 1, pipeline only (no ffmpeg, no services). Machine: ${cpus().length}x ${cpus()[0]?.model ?? '?'},
${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, load average at start ${loadavg().map((x) => x.toFixed(2)).join(' ')}
(the machine is shared with other jobs: treat numbers as indicative).

| generator | first chunk (s) | total (s) | frames/s | notes |
| --- | --- | --- | --- | --- |
${rows.join('\n')}
`);
