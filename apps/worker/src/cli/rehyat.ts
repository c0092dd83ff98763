#!/usr/bin/env node
/**
 * `rehyat generate "<prompt>" --seconds 4 --out a.mp4`: runs the pipeline in this process (no
 * Redis, Postgres or S3), encodes the chunks as they come and writes a faststart MP4. CPU by
 * default. Defaults for the model folder and backend come from the worker's config (env).
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ModelRegistry, type Generator } from '@rehyat/pipeline';
import { loadConfig } from '../config.js';
import { SegmentEncoder, finalizeMedia } from '../media/index.js';

const USAGE = `usage: rehyat generate "<prompt>" [options]

options:
  --seconds N        length in seconds (default 4)
  --out FILE         output MP4 (default out.mp4)
  --model NAME       public model name (default: the student of the first installed model)
  --seed N           0..4294967295 (default 0)
  --steps N          denoising steps per chunk (default: the manifest's)
  --guidance G       classifier-free guidance (default: the manifest's)
  --shift S          sampler time shift (default: the manifest's)
  --models-dir DIR   folder of <version>/manifest.json (default MODELS_DIR or <repo>/models)
  --backend B        ort | kernels (default PIPELINE_BACKEND or ort)
  --device D         cpu | cuda (default DEVICE or cpu)
  --no-verify        skip the model files' sha256 check
  --quiet            no progress bar`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      seconds: { type: 'string', default: '4' },
      out: { type: 'string', default: 'out.mp4' },
      model: { type: 'string' },
      seed: { type: 'string', default: '0' },
      steps: { type: 'string' },
      guidance: { type: 'string' },
      shift: { type: 'string' },
      'models-dir': { type: 'string' },
      backend: { type: 'string' },
      device: { type: 'string' },
      'no-verify': { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const [command, prompt] = positionals;
  if (command !== 'generate' || !prompt) throw new UsageError(USAGE);
  const num = (name: string, v: string | undefined, int = false): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || (int && !Number.isInteger(n))) throw new UsageError(`--${name} must be a ${int ? 'whole ' : ''}number, got '${v}'`);
    return n;
  };
  const config = loadConfig({
    ...process.env,
    ...(values['models-dir'] ? { MODELS_DIR: values['models-dir'] } : {}),
    ...(values.backend ? { PIPELINE_BACKEND: values.backend } : {}),
    ...(values.device ? { DEVICE: values.device } : {}),
  });
  const seconds = num('seconds', values.seconds)!;
  if (seconds <= 0) throw new UsageError('--seconds must be positive');
  const registry = new ModelRegistry({
    modelsDir: config.MODELS_DIR,
    backend: config.PIPELINE_BACKEND,
    device: config.DEVICE,
    deviceId: config.DEVICE_ID,
    intraOpThreads: config.INTRA_OP_THREADS,
    verify: !values['no-verify'],
  });
  const names = await registry.names();
  const model = values.model ?? names.find((n) => !n.endsWith('-teacher')) ?? names[0];
  if (!model) throw new UsageError(`no model installed under ${config.MODELS_DIR} (a <version>/manifest.json per model; see training/README)`);
  const generator: Generator = await registry.get(model);
  const info = generator.info;
  const plan = info.plan(seconds);
  const encoder = new SegmentEncoder({ width: info.width, height: info.height, fps: info.fps, ffmpegBin: config.FFMPEG_BIN });
  const bar = values.quiet ? null : new ProgressBar(plan.chunks);
  const started = Date.now();
  let firstChunkMs: number | null = null;
  let init: Uint8Array | undefined;
  const segments: Uint8Array[] = [];
  let frames = 0;
  for await (const chunk of generator.generate(
    {
      prompt,
      seconds,
      seed: num('seed', values.seed, true)!,
      ...(values.steps ? { steps: num('steps', values.steps, true)! } : {}),
      ...(values.guidance ? { guidance: num('guidance', values.guidance)! } : {}),
      ...(values.shift ? { shift: num('shift', values.shift)! } : {}),
    },
    { onStep: (p) => bar?.update(p.chunk, p.step, p.stepsTotal) },
  )) {
    firstChunkMs ??= Date.now() - started;
    const seg = await encoder.encode(chunk.frames, chunk.startFrame, chunk.index);
    init ??= seg.init;
    segments.push(seg.segment);
    frames += chunk.frames.count;
  }
  bar?.done();
  const media = await finalizeMedia(init!, segments, frames, { ffmpegBin: config.FFMPEG_BIN });
  await writeFile(values.out!, media.video);
  await registry.close();
  const total = (Date.now() - started) / 1000;
  process.stderr.write(
    `${values.out}: ${frames} frames, ${info.width}x${info.height} @ ${info.fps} fps (${(frames / info.fps).toFixed(2)} s), ` +
      `model ${model}, first chunk ${((firstChunkMs ?? 0) / 1000).toFixed(2)} s, total ${total.toFixed(2)} s (${(frames / total).toFixed(1)} frames/s)\n`,
  );
}

class ProgressBar {
  #start = Date.now();
  constructor(private readonly chunks: number) {}
  update(chunk: number, step: number, steps: number): void {
    const done = (chunk * steps + step) / (this.chunks * steps);
    const width = 30;
    const fill = Math.round(done * width);
    const elapsed = (Date.now() - this.#start) / 1000;
    const eta = done > 0 ? elapsed / done - elapsed : 0;
    process.stderr.write(
      `\r[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(done * 100).toFixed(0).padStart(3)}%  chunk ${chunk + 1}/${this.chunks} step ${step}/${steps}  eta ${eta.toFixed(0)}s `,
    );
  }
  done(): void {
    process.stderr.write('\n');
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`rehyat: ${(err as Error).message}\n`);
  process.exit(1);
});
