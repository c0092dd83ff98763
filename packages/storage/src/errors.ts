/** Base class of every error this package throws; `code` is stable and meant for mapping. */
export class StorageError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The object (or the bucket holding it) does not exist. */
export class ObjectNotFoundError extends StorageError {
  readonly key: string;
  constructor(key: string, options?: { cause?: unknown }) {
    super('object_not_found', `object not found: ${key}`, options);
    this.key = key;
  }
}

/** A byte range outside the object was requested (HTTP 416). */
export class RangeNotSatisfiableError extends StorageError {
  readonly size: number;
  constructor(size: number, options?: { cause?: unknown }) {
    super('range_not_satisfiable', `requested range is outside the object (size ${size} bytes)`, options);
    this.size = size;
  }
}

/**
 * The S3 server could not be reached or answered with a server-side failure (connection refused,
 * timeout, 5xx, missing bucket, bad credentials). Callers map it to 503.
 */
export class StorageUnavailableError extends StorageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('storage_unavailable', message, options);
  }
}

interface AwsLikeError {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** Maps an AWS SDK (or network) error to this package's typed errors. */
export function toStorageError(err: unknown, key: string, endpoint: string): StorageError {
  if (err instanceof StorageError) return err;
  const e = (err ?? {}) as AwsLikeError;
  const name = e.name ?? e.Code ?? e.code ?? '';
  const status = e.$metadata?.httpStatusCode;
  if (name === 'NoSuchKey' || name === 'NotFound' || (status === 404 && name !== 'NoSuchBucket')) {
    return new ObjectNotFoundError(key, { cause: err });
  }
  if (name === 'NoSuchBucket') {
    return new StorageUnavailableError(`S3 bucket does not exist (endpoint ${endpoint}); run ensureBucket()`, { cause: err });
  }
  const detail = e.message || name || String(err);
  return new StorageUnavailableError(`S3 at ${endpoint} failed: ${detail}`, { cause: err });
}
