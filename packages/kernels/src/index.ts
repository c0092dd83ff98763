export { createSession, cudaMemInfo, Session } from './session.js';
export type { DeviceTensor, Feed, HostTensor, RunOptions, SessionOptions, TensorType } from './session.js';
export { customOpsLibraryPath, missingCudaEpFiles, ortLibDir, runtimeInfo, CUDA_EP_FILES } from './runtime.js';
export { KernelsError } from './errors.js';
export type { KernelsErrorCode } from './errors.js';
export { fromFloat16Array, fromHalfBits, toFloat16Array, toHalfBits } from './float16.js';
export { closeness } from './tolerance.js';
export type { Closeness } from './tolerance.js';
