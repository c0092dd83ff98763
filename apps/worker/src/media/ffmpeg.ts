import { spawn } from 'node:child_process';

/** ffmpeg could not be started, or exited non-zero; `stderr` holds its last words. */
export class FfmpegError extends Error {
  override name = 'FfmpegError';
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(message);
  }
}

export interface RunOptions {
  /** Executable to run. @defaultValue `ffmpeg` */
  bin?: string;
  /** Bytes written to stdin (then closed). */
  stdin?: Uint8Array | readonly Uint8Array[];
  signal?: AbortSignal;
}

/** Runs ffmpeg/ffprobe, feeding `stdin`, and resolves with everything it wrote to stdout. */
export function runFfmpeg(args: readonly string[], opts: RunOptions = {}): Promise<Buffer> {
  const bin = opts.bin ?? 'ffmpeg';
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], signal: opts.signal });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    child.on('error', (e) => {
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
      reject(new FfmpegError(missing ? `${bin} not found on PATH (apt-get install ffmpeg)` : `${bin}: ${e.message}`, null, err));
    });
    // EPIPE on stdin surfaces through the exit code and stderr; do not let it crash the process.
    child.stdin.on('error', () => {});
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new FfmpegError(`${bin} exited with code ${code}: ${lastLine(err)}`, code, err));
    });
    const input = opts.stdin;
    if (input === undefined) child.stdin.end();
    else void writeAll(child.stdin, input instanceof Uint8Array ? [input] : input);
  });
}

async function writeAll(stream: NodeJS.WritableStream, parts: readonly Uint8Array[]): Promise<void> {
  for (const p of parts) {
    if (!stream.write(p)) await new Promise<void>((r) => stream.once('drain', () => r()));
  }
  stream.end();
}

function lastLine(s: string): string {
  const lines = s.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}
