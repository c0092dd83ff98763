import { existsSync } from 'node:fs';

import { KernelsError } from './errors.js';
import {
  customOpsLibraryPath,
  missingCudaEpFiles,
  native,
  type NativeDeviceTensor,
  type NativeSession,
} from './runtime.js';

export type TensorType = 'float32' | 'float16' | 'int64' | 'int32' | 'float64' | 'uint8' | 'bool';

/** A tensor in host memory; float16 data are IEEE half bit patterns in a Uint16Array. */
export interface HostTensor {
  type: TensorType;
  dims: readonly number[];
  data: Float32Array | Uint16Array | BigInt64Array | Int32Array | Float64Array | Uint8Array;
}

/** A tensor in GPU memory, owned by ONNX Runtime's CUDA allocator; feed it back as an input. */
export interface DeviceTensor {
  readonly type: TensorType;
  readonly dims: number[];
  readonly location: 'cuda';
  /** Copies the tensor to host memory (synchronous device-to-host copy). */
  toHost(): HostTensor;
  /** Frees the device memory now instead of at garbage collection. */
  dispose(): void;
}

export type Feed = HostTensor | DeviceTensor;

export interface SessionOptions {
  /** Execution provider. @defaultValue 'cpu' */
  provider?: 'cpu' | 'cuda';
  /** CUDA device ordinal. @defaultValue 0 */
  deviceId?: number;
  /** Register the ai.rehyat custom ops (librehyat_ops.so). @defaultValue true */
  customOps?: boolean;
  /** Intra-op threads (CPU kernels, the HybridAttention CPU op included); 0 = ORT default. @defaultValue 0 */
  intraOpThreads?: number;
  /** Inter-op threads; 0 = ORT default. @defaultValue 0 */
  interOpThreads?: number;
  /**
   * Extra CUDA execution provider options (ORT's names, string values), e.g.
   * `{ arena_extend_strategy: 'kSameAsRequested', gpu_mem_limit: '8589934592' }`. The addon adds
   * `use_ep_level_unified_stream: '1'` unless given (every run of the session on one CUDA stream,
   * which pipelined runs need). @defaultValue {}
   */
  cudaOptions?: Record<string, string>;
  /** ORT log severity 0 (verbose) .. 4 (fatal). @defaultValue 3 */
  logSeverity?: 0 | 1 | 2 | 3 | 4;
}

export interface RunOptions {
  /** Where each output lands: 'cpu' (default, a HostTensor) or 'cuda' (a DeviceTensor, no copy). */
  outputs?: Record<string, 'cpu' | 'cuda'>;
  /**
   * false: a pipelined run (CUDA sessions, every output on 'cuda'). The promise resolves once the
   * work is queued on the session's stream, not when it is done, so the next run is queued while
   * the GPU still works; later runs of the session are ordered after it, and `toHost()` (or a run
   * with `sync: true`) waits for it. Only for graphs whose every node runs on the CUDA EP (such as
   * one HybridAttention node): on the H100 a pipelined run of the standard-op graph, which has
   * CPU shape nodes, aborted inside ONNX Runtime. @defaultValue true
   */
  sync?: boolean;
}

/** An ONNX Runtime inference session created by the @rehyat/kernels addon. */
export class Session {
  readonly #s: NativeSession;
  constructor(s: NativeSession) {
    this.#s = s;
  }
  get inputNames(): string[] {
    return this.#s.inputNames;
  }
  get outputNames(): string[] {
    return this.#s.outputNames;
  }
  get provider(): 'cpu' | 'cuda' {
    return this.#s.provider as 'cpu' | 'cuda';
  }
  /**
   * Runs the model off the JS thread. Every input must be fed; DeviceTensors are bound without
   * copies, and outputs asked on 'cuda' come back as DeviceTensors (e.g. recurrent state).
   */
  async run(feeds: Record<string, Feed>, options: RunOptions = {}): Promise<Record<string, HostTensor | DeviceTensor>> {
    return (await this.#s.run(feeds, options.outputs ?? {}, { sync: options.sync ?? true })) as Record<string, HostTensor | DeviceTensor>;
  }
  /** Copies a host tensor into the session's device memory (CUDA sessions only). */
  toDevice(t: HostTensor): DeviceTensor {
    return this.#s.toDevice(t) as unknown as DeviceTensor;
  }
  /** Frees the session (await all runs first). */
  release(): void {
    this.#s.release();
  }
}

/**
 * Creates a session of `modelPath` with the ai.rehyat custom ops registered, on the CPU or the
 * CUDA execution provider, inside the same ONNX Runtime (and OrtEnv) as onnxruntime-node.
 */
export async function createSession(modelPath: string, options: SessionOptions = {}): Promise<Session> {
  const provider = options.provider ?? 'cpu';
  if (provider !== 'cpu' && provider !== 'cuda')
    throw new KernelsError('REHYAT_BAD_INPUT', `provider must be 'cpu' or 'cuda', got '${String(provider)}'`);
  const addon = native();
  if (provider === 'cuda') {
    const missing = missingCudaEpFiles();
    if (missing.length > 0)
      throw new KernelsError(
        'REHYAT_CUDA_EP_MISSING',
        `the CUDA execution provider of ONNX Runtime is not installed; missing: ${missing.join(', ')}. ` +
          'Run `npm run gpu:install` (needs the CUDA 13 runtime, cuBLAS and cuDNN 9 on the library path).',
      );
  }
  const config: Record<string, unknown> = {
    modelPath,
    provider,
    deviceId: options.deviceId ?? 0,
    intraOpThreads: options.intraOpThreads ?? 0,
    interOpThreads: options.interOpThreads ?? 0,
    logSeverity: options.logSeverity ?? 3,
  };
  if (options.cudaOptions) config['cudaOptions'] = options.cudaOptions;
  if (options.customOps ?? true) {
    const lib = customOpsLibraryPath(provider);
    if (!existsSync(lib))
      throw new KernelsError(
        'REHYAT_NOT_BUILT',
        `${lib} is missing: run npm run build:native -w @rehyat/kernels` +
          (provider === 'cuda' ? ' on a host with nvcc (CUDA 13)' : ''),
      );
    config['customOpsLibrary'] = lib;
  }
  return new Session(await addon.createSession(config));
}

/** Free and total bytes of a CUDA device (needs a CUDA session created first). */
export function cudaMemInfo(deviceId = 0): { free: number; total: number } {
  return native().cudaMemInfo(deviceId);
}

export type { NativeDeviceTensor };
