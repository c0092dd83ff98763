import { Worker } from 'node:worker_threads';

/**
 * Kills this process with SIGKILL after `ms` unless it has exited by then. The last resort of the
 * device-fatal exit: when the main thread is stuck in native code (a CUDA call on a broken context,
 * a session's synchronous release, the driver's teardown at exit), no timer of the main thread can
 * fire, but a thread of its own still can. The thread does not keep the process alive.
 */
export function armExitWatchdog(ms: number): void {
  const code = `const { workerData: d } = require('node:worker_threads');
setTimeout(() => process.kill(d.pid, 'SIGKILL'), d.ms);`;
  // No execArgv: the thread needs no loader (tsx) and must not wait on the main thread to start.
  const watchdog = new Worker(code, { eval: true, execArgv: [], workerData: { pid: process.pid, ms } });
  watchdog.unref();
}
