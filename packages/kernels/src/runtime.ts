import { existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { KernelsError } from './errors.js';

const here = dirname(fileURLToPath(import.meta.url));
const requireHere = createRequire(import.meta.url);

/** Files of the CUDA execution provider that must sit beside libonnxruntime.so.1. */
export const CUDA_EP_FILES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'] as const;

/** Where the native build outputs are: `REHYAT_KERNELS_BUILD_DIR`, else `packages/kernels/build`. */
export function buildDir(): string {
  return process.env['REHYAT_KERNELS_BUILD_DIR'] ?? resolve(here, '..', 'build');
}

/**
 * Path of the custom-op library: librehyat_ops.so (CPU kernels) for CPU sessions,
 * librehyat_ops_cuda.so (CPU + CUDA kernels, built when nvcc is found) for CUDA sessions.
 */
export function customOpsLibraryPath(provider: 'cpu' | 'cuda' = 'cpu'): string {
  return join(buildDir(), provider === 'cuda' ? 'librehyat_ops_cuda.so' : 'librehyat_ops.so');
}

/** The directory of onnxruntime-node's native runtime (libonnxruntime.so.1 and its EP libraries). */
export function ortLibDir(): string {
  let entry: string;
  try {
    entry = requireHere.resolve('onnxruntime-node');
  } catch {
    throw new KernelsError('REHYAT_ORT_NOT_FOUND', 'onnxruntime-node is not installed (npm install onnxruntime-node@1.29.0)');
  }
  // .../onnxruntime-node/dist/index.js -> .../onnxruntime-node/bin/napi-v6/<platform>/<arch>
  let pkg = dirname(entry);
  while (!existsSync(join(pkg, 'package.json'))) pkg = dirname(pkg);
  return join(realpathSync(pkg), 'bin', 'napi-v6', process.platform, process.arch);
}

/** Missing CUDA execution provider files (empty when `npm run gpu:install` was done). */
export function missingCudaEpFiles(): string[] {
  const dir = ortLibDir();
  return CUDA_EP_FILES.filter((f) => !existsSync(join(dir, f))).map((f) => join(dir, f));
}

export interface NativeAddon {
  init(libPath: string): { ortVersion: string; envShared: boolean; env: bigint };
  createSession(config: Record<string, unknown>): Promise<NativeSession>;
  cudaMemInfo(deviceId: number): { free: number; total: number };
  DeviceTensor: abstract new () => NativeDeviceTensor;
}
export interface NativeSession {
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly provider: string;
  run(
    feeds: Record<string, unknown>,
    locations: Record<string, string>,
    options?: { sync?: boolean },
  ): Promise<Record<string, unknown>>;
  toDevice(t: unknown): NativeDeviceTensor;
  release(): void;
}
export interface NativeDeviceTensor {
  readonly type: string;
  readonly dims: number[];
  readonly location: 'cuda';
  toHost(): unknown;
  dispose(): void;
}

let addon: NativeAddon | undefined;
let info: { ortVersion: string; envShared: boolean } | undefined;

/** Loads the addon and binds it to onnxruntime-node's libonnxruntime.so.1 (once per process). */
export function native(): NativeAddon {
  if (addon) return addon;
  const file = join(buildDir(), 'rehyat_addon.node');
  if (!existsSync(file))
    throw new KernelsError('REHYAT_NOT_BUILT', `${file} is missing: run npm run build:native -w @rehyat/kernels`);
  const lib = join(ortLibDir(), 'libonnxruntime.so.1');
  if (!existsSync(lib)) throw new KernelsError('REHYAT_ORT_NOT_FOUND', `${lib} is missing`);
  const a = requireHere(file) as NativeAddon;
  const r = a.init(lib);
  info = { ortVersion: r.ortVersion, envShared: r.envShared };
  addon = a;
  return a;
}

/** The ONNX Runtime the addon runs on, and whether its OrtEnv is the process-wide singleton. */
export function runtimeInfo(): { ortVersion: string; envShared: boolean; ortLibDir: string } {
  native();
  return { ...info!, ortLibDir: ortLibDir() };
}
