/**
 * A GPU stand-in for CPU tests of resource lifetime. `ledger.wrap(session)` returns a session that
 * behaves like the kernels backend on CUDA: outputs named in `keepOnDevice` come back as device
 * handles (fed back as inputs as they are, `toHost()` copies, `dispose()` frees and is idempotent,
 * any use after `dispose()` throws as the addon's DeviceTensor does), everything else as host
 * tensors. The ledger counts every handle made and freed, so a test can assert that nothing is
 * left on the "device" after a run however it ended. Types only from the pipeline, so the worker's
 * tests can use it beside their own `@rehyat/pipeline` import.
 */
import type { DeviceTensorLike, Feed, HostTensor, ModelSession } from '../../src/index.js';

export class SimulatedDeviceTensor implements DeviceTensorLike {
  readonly location = 'cuda' as const;
  #host: HostTensor | null;
  constructor(
    host: HostTensor,
    readonly name: string,
    private readonly ledger: DeviceLedger,
  ) {
    this.#host = host;
  }
  get dims(): readonly number[] {
    return this.#live().dims;
  }
  get disposed(): boolean {
    return this.#host === null;
  }
  toHost(): HostTensor {
    const h = this.#live();
    return { type: h.type, dims: [...h.dims], data: h.data.slice() as HostTensor['data'] };
  }
  dispose(): void {
    if (this.#host === null) return;
    this.#host = null;
    this.ledger.freed(this);
  }
  /** The data, for the wrapped session's run (no copy: as a real device tensor is bound). */
  bound(): HostTensor {
    return this.#live();
  }
  #live(): HostTensor {
    if (this.#host === null) throw new Error(`DeviceTensor was disposed (${this.name})`);
    return this.#host;
  }
}

export interface LedgerFaults {
  /** Called before run number `n` (0-based, per wrapped session); throw to fail that run. */
  beforeRun?: (n: number) => void;
}

export class DeviceLedger {
  allocated = 0;
  released = 0;
  readonly #live = new Set<SimulatedDeviceTensor>();

  /** Device tensors allocated and not yet freed. */
  get live(): number {
    return this.#live.size;
  }
  /** Names of the live tensors (for assertion messages). */
  liveNames(): string[] {
    return [...this.#live].map((t) => t.name);
  }
  freed(t: SimulatedDeviceTensor): void {
    if (this.#live.delete(t)) this.released++;
  }

  wrap(inner: ModelSession, faults: LedgerFaults = {}): ModelSession {
    let runs = 0;
    return {
      inputNames: inner.inputNames,
      outputNames: inner.outputNames,
      run: async (feeds: Record<string, Feed>, keepOnDevice: readonly string[] = []) => {
        faults.beforeRun?.(runs++);
        const host: Record<string, Feed> = {};
        for (const [name, t] of Object.entries(feeds)) {
          if ((t as DeviceTensorLike).location === 'cuda') {
            if (!(t instanceof SimulatedDeviceTensor)) throw new Error(`input ${name} is a device tensor of another session`);
            host[name] = t.bound();
          } else host[name] = t;
        }
        const out = await inner.run(host);
        const result: Record<string, Feed> = {};
        for (const [name, t] of Object.entries(out)) {
          if (keepOnDevice.includes(name)) {
            const d = new SimulatedDeviceTensor(t as HostTensor, name, this);
            this.#live.add(d);
            this.allocated++;
            result[name] = d;
          } else result[name] = t;
        }
        return result;
      },
      release: () => inner.release(),
    };
  }
}
