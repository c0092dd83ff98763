/**
 * GPU benchmark of generation (pipeline only: no encoding, no services), one case per process so
 * that each process's GPU memory (ONNX Runtime's arena never shrinks) and time limit belong to
 * that case alone. `bench/gpu-run.sh` runs the cases on the H100 and polls nvidia-smi for peak
 * memory; `report` turns its `results.jsonl` into the markdown of `bench/results/h100.md`.
 *
 *   node generate-gpu.mjs case <modelsDir> <student-ort|student-kernels|teacher> <seconds> [warmupSeconds] [device]
 *   node generate-gpu.mjs report <results.jsonl> <machine.txt>
 *
 * `case` loads the model on `device` (default cuda), generates a warm-up video of warmupSeconds
 * (default 1; 0 = none; its first chunk is the cold time to first chunk), then the measured video
 * of `seconds` (prompt fixed, seed 1, default steps/guidance), and prints one `RESULT {json}` line.
 * For the teacher, a `seconds` above the manifest's `limits.teacher_max_seconds` is asked anyway
 * and the refusal is recorded (the limit is the pipeline's; it is not bypassed).
 */
import { readFileSync } from 'node:fs';
import { LoadedModel, StudentGenerator, TeacherGenerator, type Generator } from '../src/index.js';

const prompt = 'a red circle bounces on a blue background';

interface CaseResult {
  case: string;
  seconds: number;
  device: string;
  loadS?: number;
  coldFirstChunkS?: number;
  warmupTotalS?: number;
  firstChunkS?: number;
  totalS?: number;
  frames?: number;
  chunks?: number;
  videoSeconds?: number;
  fps?: number;
  realTime?: number;
  error?: string;
}

async function runOnce(g: Generator, seconds: number): Promise<{ first: number; total: number; frames: number; chunks: number }> {
  const t0 = performance.now();
  let first = 0;
  let frames = 0;
  let chunks = 0;
  for await (const c of g.generate({ prompt, seconds, seed: 1 })) {
    if (!chunks) first = performance.now() - t0;
    frames += c.frames.count;
    chunks++;
  }
  return { first: first / 1000, total: (performance.now() - t0) / 1000, frames, chunks };
}

async function runCase(modelsDir: string, name: string, seconds: number, warmup: number, device: 'cpu' | 'cuda'): Promise<CaseResult> {
  const dir = `${modelsDir.replace(/\/$/, '')}/rehyat-5`;
  const r: CaseResult = { case: name, seconds, device };
  const t0 = performance.now();
  let g: Generator;
  try {
    if (name === 'student-ort') g = new StudentGenerator(await LoadedModel.load(dir, { device }));
    else if (name === 'student-kernels') g = new StudentGenerator(await LoadedModel.load(dir, { device, backend: 'kernels' }));
    else if (name === 'teacher') g = new TeacherGenerator(await LoadedModel.load(dir, { device, student: false, teacher: true }));
    else throw new Error(`unknown case ${name}`);
  } catch (err) {
    return { ...r, error: `load: ${(err as Error).message.split('\n')[0]}` };
  }
  r.loadS = (performance.now() - t0) / 1000;
  try {
    if (warmup > 0) {
      const w = await runOnce(g, warmup);
      r.coldFirstChunkS = w.first;
      r.warmupTotalS = w.total;
    }
    const m = await runOnce(g, seconds);
    const fps = g.info.fps;
    Object.assign(r, {
      firstChunkS: m.first,
      totalS: m.total,
      frames: m.frames,
      chunks: m.chunks,
      videoSeconds: m.frames / fps,
      fps: m.frames / m.total,
      realTime: m.frames / fps / m.total,
    });
  } catch (err) {
    r.error = `${(err as Error).name}: ${(err as Error).message.split('\n')[0]}`;
  }
  await g.close();
  return r;
}

interface Row extends CaseResult {
  peakMiB?: number;
  baseMiB?: number;
  rc?: number;
}

function report(jsonl: string, machine: string): string {
  const rows: Row[] = readFileSync(jsonl, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Row);
  const f = (x: number | undefined, d = 2) => (x === undefined ? 'n/a' : x.toFixed(d));
  const mem = (r: Row) => (!r.peakMiB || r.baseMiB === undefined ? 'n/a' : String(r.peakMiB - r.baseMiB));
  const teacherAt = (s: number) => rows.find((r) => r.case === 'teacher' && r.seconds === s && r.totalS !== undefined);
  const lines = rows.map((r) => {
    const t = teacherAt(r.seconds);
    const vsTeacher = r.case !== 'teacher' && t && r.totalS ? `${(t.totalS! / r.totalS).toFixed(1)}x` : r.case === 'teacher' && r.totalS !== undefined ? '1x' : 'n/a';
    const note = r.error ? r.error : r.rc && r.rc !== 0 ? `exit ${r.rc}${r.rc === 124 ? ' (time limit)' : ''}` : `${r.frames} frames, ${r.chunks} chunks`;
    return `| ${r.case} | ${r.seconds} | ${f(r.loadS)} | ${f(r.coldFirstChunkS)} | ${f(r.firstChunkS, 3)} | ${f(r.totalS)} | ${f(r.fps, 1)} | ${r.realTime === undefined ? 'n/a' : `${f(r.realTime, 1)}x`} | ${vsTeacher} | ${mem(r)} | ${note} |`;
  });
  return `${machine.trim()}

| case | video s | load (s) | cold first chunk (s) | first chunk (s) | total (s) | frames/s | vs real time | speed-up vs teacher (same length) | peak GPU MiB (above idle) | notes |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |
${lines.join('\n')}
`;
}

const [mode, a1, a2, a3, a4, a5] = process.argv.slice(2);
if (mode === 'case' && a1 && a2 && a3) {
  const r = await runCase(a1, a2, Number(a3), a4 === undefined ? 1 : Number(a4), (a5 ?? 'cuda') as 'cpu' | 'cuda');
  console.log(`RESULT ${JSON.stringify(r)}`);
} else if (mode === 'report' && a1 && a2) {
  console.log(report(a1, readFileSync(a2, 'utf8')));
} else {
  console.error('usage: generate-gpu case <modelsDir> <student-ort|student-kernels|teacher> <seconds> [warmupSeconds] [device] | report <results.jsonl> <machine.txt>');
  process.exit(2);
}
