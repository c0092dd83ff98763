/**
 * Test-only fault injection, loaded into a worker process with `node --import <this file>` by
 * device-fatal.test.ts and by nothing else (no source file imports it, no config reaches it): the
 * `REHYAT_TEST_ORT_FAULT_AT_RUN`-th ONNX Runtime session run of the process rejects with the error
 * ONNX Runtime's CUDA execution provider raises after an illegal memory access. A GPU-less machine
 * cannot produce a real device fault, so this stands in for one at the backend boundary; everything
 * above it (pipeline, processor, classifier, main's exit, BullMQ retry) is the real code.
 *
 * `REHYAT_TEST_ORT_RELEASE_HANGS` makes releasing a session hang, as it can on a broken CUDA
 * context: `pending` never settles (the process stays alive: a timer is kept), `blocked` blocks the
 * main thread for good (as a native call stuck in the driver: ONNX Runtime's release is synchronous
 * native code under its promise).
 */
import ort from 'onnxruntime-node';

export const CUDA_FAULT_MESSAGE =
  '[ONNXRuntimeError] : 1 : FAIL : CUDA error cudaErrorIllegalAddress:an illegal memory access was encountered';

const at = Number(process.env.REHYAT_TEST_ORT_FAULT_AT_RUN ?? '0');
if (at > 0) {
  // The exported factory is the session class at run time; its instances' `run` is a prototype method.
  const proto = (ort.InferenceSession as unknown as { prototype: { run: (...args: unknown[]) => Promise<unknown> } }).prototype;
  const run = proto.run;
  let runs = 0;
  proto.run = function (this: unknown, ...args: unknown[]) {
    runs += 1;
    if (runs >= at) return Promise.reject(new Error(CUDA_FAULT_MESSAGE));
    return run.apply(this, args);
  };
}

const hang = process.env.REHYAT_TEST_ORT_RELEASE_HANGS;
if (hang === 'pending' || hang === 'blocked') {
  const proto = (ort.InferenceSession as unknown as { prototype: { release: () => Promise<void> } }).prototype;
  proto.release = function () {
    if (hang === 'blocked') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    return new Promise<void>(() => {
      setInterval(() => {}, 60_000);
    });
  };
}
