/** Error codes thrown by @rehyat/kernels (on top of ONNX Runtime's `ORT_*` codes). */
export type KernelsErrorCode =
  | 'REHYAT_BAD_INPUT'
  | 'REHYAT_NOT_BUILT'
  | 'REHYAT_CUDA_EP_MISSING'
  | 'REHYAT_ORT_NOT_FOUND';

export class KernelsError extends Error {
  readonly code: KernelsErrorCode;
  constructor(code: KernelsErrorCode, message: string) {
    super(message);
    this.name = 'KernelsError';
    this.code = code;
  }
}
