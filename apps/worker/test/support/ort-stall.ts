/**
 * Test-only, loaded into a worker process with `node --import <this file>` by
 * checkpoint-cadence.test.ts and by nothing else: the `REHYAT_TEST_ORT_STALL_AT_RUN`-th ONNX Runtime
 * session run of the process never settles (a timer keeps the process alive), so the test knows
 * exactly which chunks a worker shipped before it is killed with SIGKILL, instead of racing a
 * running generation. Everything else (pipeline, processor, S3, BullMQ) is the real code.
 */
import ort from 'onnxruntime-node';

const at = Number(process.env.REHYAT_TEST_ORT_STALL_AT_RUN ?? '0');
if (at > 0) {
  const proto = (ort.InferenceSession as unknown as { prototype: { run: (...args: unknown[]) => Promise<unknown> } }).prototype;
  const run = proto.run;
  let runs = 0;
  proto.run = function (this: unknown, ...args: unknown[]) {
    runs += 1;
    if (runs >= at) {
      return new Promise<unknown>(() => {
        setInterval(() => {}, 60_000);
      });
    }
    return run.apply(this, args);
  };
}
