import type { HostTensor } from './tensor.js';

/**
 * Execution backends. `ort`: onnxruntime-node with the standard-op graphs (CPU or CUDA EP).
 * `kernels`: the @rehyat/kernels addon, which registers `ai.rehyat::HybridAttention` and runs the
 * custom-op graph (`dit_step` custom variant) on CPU or CUDA; with CUDA it keeps the recurrent
 * state in device memory between steps (`keepOnDevice`).
 */
export type BackendName = 'ort' | 'kernels';
export type DeviceName = 'cpu' | 'cuda';

export interface BackendOptions {
  /** @defaultValue `ort` */
  backend?: BackendName;
  /** @defaultValue `cpu` */
  device?: DeviceName;
  /** CUDA device ordinal. @defaultValue 0 */
  deviceId?: number;
  /** Intra-op threads of the CPU EP; 0 lets ONNX Runtime choose. @defaultValue 0 */
  intraOpThreads?: number;
}

/** A tensor that stays in device memory (kernels + CUDA); fed back as an input as is. */
export interface DeviceTensorLike {
  readonly location: 'cuda';
  readonly dims: readonly number[];
  toHost(): HostTensor;
  dispose(): void;
}

export type Feed = HostTensor | DeviceTensorLike;

export function isDeviceTensor(t: Feed): t is DeviceTensorLike {
  return (t as DeviceTensorLike).location === 'cuda';
}

export function toHost(t: Feed): HostTensor {
  return isDeviceTensor(t) ? t.toHost() : t;
}

/**
 * Frees the device tensors among `feeds` (host tensors are left to the GC). Every one is tried
 * even if one throws; the first error is rethrown after.
 */
export function disposeFeeds(feeds: Iterable<Feed | undefined>): void {
  let first: unknown;
  let failed = false;
  for (const t of feeds) {
    if (!t || !isDeviceTensor(t)) continue;
    try {
      t.dispose();
    } catch (err) {
      if (!failed) first = err;
      failed = true;
    }
  }
  if (failed) throw first;
}

export interface ModelSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /**
   * Runs the graph off the JS thread; outputs named in `keepOnDevice` stay on the device when it
   * can. Device tensors it returns belong to the caller, who frees them with `dispose()`.
   */
  run(feeds: Record<string, Feed>, keepOnDevice?: readonly string[]): Promise<Record<string, Feed>>;
  release(): Promise<void>;
}

/** The backend cannot run here (addon not built, CUDA EP missing, file unreadable). */
export class BackendError extends Error {
  override name = 'BackendError';
}

export async function openSession(path: string, opts: BackendOptions = {}): Promise<ModelSession> {
  return (opts.backend ?? 'ort') === 'kernels' ? openKernels(path, opts) : openOrt(path, opts);
}

async function openOrt(path: string, opts: BackendOptions): Promise<ModelSession> {
  const ort = await import('onnxruntime-node');
  const device = opts.device ?? 'cpu';
  let session: import('onnxruntime-node').InferenceSession;
  try {
    session = await ort.InferenceSession.create(path, {
      executionProviders: device === 'cuda' ? [{ name: 'cuda', deviceId: opts.deviceId ?? 0 }] : ['cpu'],
      graphOptimizationLevel: 'all',
      ...(opts.intraOpThreads ? { intraOpNumThreads: opts.intraOpThreads } : {}),
    });
  } catch (err) {
    throw new BackendError(`onnxruntime-node cannot load ${path} on ${device}: ${(err as Error).message}`, { cause: err });
  }
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds) {
      const inputs: Record<string, import('onnxruntime-node').Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) {
        const h = toHost(t);
        inputs[name] = new ort.Tensor(h.type, h.data as Float32Array, h.dims);
      }
      const out = await session.run(inputs);
      // CPU outputs (the default output location, on the CUDA EP too) are JS-owned copies: the
      // arrays stay valid after dispose(), which drops whatever else an ORT tensor may hold.
      try {
        const result: Record<string, Feed> = {};
        for (const [name, t] of Object.entries(out)) result[name] = { type: t.type as HostTensor['type'], dims: [...t.dims], data: t.data as HostTensor['data'] };
        return result;
      } finally {
        for (const t of Object.values(out)) t.dispose?.();
      }
    },
    async release() {
      await session.release();
    },
  };
}

async function openKernels(path: string, opts: BackendOptions): Promise<ModelSession> {
  let kernels: typeof import('@rehyat/kernels');
  try {
    kernels = await import('@rehyat/kernels');
  } catch (err) {
    throw new BackendError(`the kernels backend needs @rehyat/kernels built (npm run build -w @rehyat/kernels): ${(err as Error).message}`, { cause: err });
  }
  const device = opts.device ?? 'cpu';
  let session: import('@rehyat/kernels').Session;
  try {
    session = await kernels.createSession(path, { provider: device, deviceId: opts.deviceId ?? 0, intraOpThreads: opts.intraOpThreads ?? 0 });
  } catch (err) {
    throw new BackendError(`@rehyat/kernels cannot load ${path} on ${device}: ${(err as Error).message}`, { cause: err });
  }
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds, keepOnDevice = []) {
      const outputs: Record<string, 'cpu' | 'cuda'> = {};
      if (device === 'cuda') for (const n of keepOnDevice) outputs[n] = 'cuda';
      const out = await session.run(feeds as Record<string, import('@rehyat/kernels').Feed>, { outputs });
      return out as Record<string, Feed>;
    },
    async release() {
      session.release();
    },
  };
}
