import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { RangeNotSatisfiableError, StorageUnavailableError, toStorageError } from './errors.js';
import type { ByteRange } from './range.js';

/** Where the objects live and how to reach them. */
export interface ObjectStorageOptions {
  /** S3 endpoint URL, e.g. `http://127.0.0.1:9000`; omit for AWS itself. */
  endpoint?: string;
  bucket: string;
  /** @defaultValue `us-east-1` */
  region?: string;
  accessKeyId: string;
  secretAccessKey: string;
  /**
   * Path-style addressing (`endpoint/bucket/key`), needed by MinIO, s3rver and most self-hosted
   * servers. @defaultValue `true`
   */
  forcePathStyle?: boolean;
  /** Per-request timeout. @defaultValue `30_000` */
  requestTimeoutMs?: number;
  /** SDK retry attempts for transient failures. @defaultValue `3` */
  maxAttempts?: number;
  /** Upper bound of concurrent sockets to S3. @defaultValue `256` */
  maxSockets?: number;
  /** Part size of multipart uploads of streams. @defaultValue `8 MiB` (S3 minimum is 5 MiB) */
  multipartPartSizeBytes?: number;
}

export type PutBody = Buffer | Uint8Array | string | Readable;

export interface PutOptions {
  contentType: string;
  /** Known length of a stream body; lets a small stream go up in one PUT. */
  contentLength?: number;
  cacheControl?: string;
}

export interface ObjectInfo {
  key: string;
  /** Bytes in the returned body (the range's length for a ranged read). */
  contentLength: number;
  contentType: string;
  etag: string | undefined;
  lastModified: Date | undefined;
}

export interface GetResult extends ObjectInfo {
  body: Readable;
  /** Present for a ranged read: the range served and the object's full size. */
  range?: ByteRange & { size: number };
}

/**
 * A thin, typed wrapper over the AWS SDK v3 S3 client, bound to one bucket. Every method throws
 * {@link ObjectNotFoundError} for a missing object and {@link StorageUnavailableError} for
 * anything the caller cannot fix (network, 5xx, missing bucket, credentials).
 */
export class ObjectStorage {
  readonly bucket: string;
  readonly endpoint: string;
  readonly client: S3Client;
  private readonly partSize: number;

  constructor(opts: ObjectStorageOptions) {
    this.bucket = opts.bucket;
    this.endpoint = opts.endpoint ?? `https://s3.${opts.region ?? 'us-east-1'}.amazonaws.com`;
    this.partSize = opts.multipartPartSizeBytes ?? 8 * 1024 * 1024;
    this.client = new S3Client({
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      region: opts.region ?? 'us-east-1',
      forcePathStyle: opts.forcePathStyle ?? true,
      credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey },
      // Since 3.729 the SDK adds CRC32 checksums (and aws-chunked trailers for streams) to every
      // upload and validates them on download; simple S3 servers (s3rver, older MinIO, Ceph)
      // reject or ignore those. Only send/validate them where the S3 API requires it.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: opts.maxAttempts ?? 3,
      requestHandler: {
        requestTimeout: opts.requestTimeoutMs ?? 30_000,
        connectionTimeout: Math.min(opts.requestTimeoutMs ?? 30_000, 5_000),
        httpAgent: { keepAlive: true, maxSockets: opts.maxSockets ?? 256 },
        httpsAgent: { keepAlive: true, maxSockets: opts.maxSockets ?? 256 },
      },
    });
  }

  /** Uploads an object. Buffers go up in one PUT; streams use multipart above the part size. */
  async put(key: string, body: PutBody, opts: PutOptions): Promise<{ etag: string | undefined }> {
    try {
      if (body instanceof Readable && opts.contentLength === undefined) {
        const upload = new Upload({
          client: this.client,
          params: {
            Bucket: this.bucket,
            Key: key,
            Body: body,
            ContentType: opts.contentType,
            ...(opts.cacheControl ? { CacheControl: opts.cacheControl } : {}),
          },
          partSize: this.partSize,
          queueSize: 4,
          leavePartsOnError: false,
        });
        const out = await upload.done();
        return { etag: out.ETag };
      }
      const out = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: opts.contentType,
          ...(opts.contentLength !== undefined ? { ContentLength: opts.contentLength } : {}),
          ...(opts.cacheControl ? { CacheControl: opts.cacheControl } : {}),
        }),
      );
      return { etag: out.ETag };
    } catch (err) {
      throw toStorageError(err, key, this.endpoint);
    }
  }

  /**
   * Opens an object as a Node stream. With `range` (inclusive, already resolved against the
   * object's size, see {@link resolveRange}) only those bytes are returned.
   * The caller must consume or destroy `body`, or the socket stays busy.
   */
  async get(key: string, opts: { range?: ByteRange } = {}): Promise<GetResult> {
    try {
      const out = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(opts.range ? { Range: `bytes=${opts.range.start}-${opts.range.end}` } : {}),
        }),
      );
      if (!(out.Body instanceof Readable)) {
        throw new StorageUnavailableError(`S3 at ${this.endpoint} returned no body for ${key}`);
      }
      const result: GetResult = {
        key,
        body: out.Body,
        contentLength: out.ContentLength ?? 0,
        contentType: out.ContentType ?? 'application/octet-stream',
        etag: out.ETag,
        lastModified: out.LastModified,
      };
      const cr = out.ContentRange ? /^bytes (\d+)-(\d+)\/(\d+)$/.exec(out.ContentRange) : null;
      if (opts.range && cr) {
        result.range = { start: Number(cr[1]), end: Number(cr[2]), size: Number(cr[3]) };
      }
      return result;
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === 'InvalidRange' || e.$metadata?.httpStatusCode === 416) {
        const info = await this.head(key);
        throw new RangeNotSatisfiableError(info.contentLength, { cause: err });
      }
      throw toStorageError(err, key, this.endpoint);
    }
  }

  /** Reads a whole object into memory (small objects only: manifests, tests). */
  async getBuffer(key: string): Promise<Buffer> {
    const { body } = await this.get(key);
    const parts: Buffer[] = [];
    for await (const part of body) parts.push(part as Buffer);
    return Buffer.concat(parts);
  }

  async head(key: string): Promise<ObjectInfo> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return {
        key,
        contentLength: out.ContentLength ?? 0,
        contentType: out.ContentType ?? 'application/octet-stream',
        etag: out.ETag,
        lastModified: out.LastModified,
      };
    } catch (err) {
      throw toStorageError(err, key, this.endpoint);
    }
  }

  /** Whether the object exists; other failures still throw. */
  async exists(key: string): Promise<boolean> {
    try {
      await this.head(key);
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === 'object_not_found') return false;
      throw err;
    }
  }

  /** Deletes one object; deleting a missing object is not an error (S3 semantics). */
  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      throw toStorageError(err, key, this.endpoint);
    }
  }

  /** Lists every key under a prefix (paginated internally). */
  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    try {
      do {
        const out = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of out.Contents ?? []) if (o.Key) keys.push(o.Key);
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw toStorageError(err, prefix, this.endpoint);
    }
    return keys;
  }

  /** Deletes every object under a prefix (e.g. `videos/<id>/`); returns how many were deleted. */
  async deletePrefix(prefix: string): Promise<number> {
    if (prefix === '') throw new RangeError('deletePrefix refuses the empty prefix (it would empty the bucket)');
    const keys = await this.list(prefix);
    try {
      for (let i = 0; i < keys.length; i += 1000) {
        const batch = keys.slice(i, i + 1000);
        const out = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        const failed = out.Errors ?? [];
        if (failed.length > 0) {
          const first = failed[0];
          throw new StorageUnavailableError(
            `S3 at ${this.endpoint} failed to delete ${failed.length} object(s) under ${prefix}: ${first?.Key} ${first?.Code} ${first?.Message}`,
          );
        }
      }
    } catch (err) {
      throw toStorageError(err, prefix, this.endpoint);
    }
    return keys.length;
  }

  /** Creates the bucket unless it exists (idempotent). */
  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return;
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status !== 404) throw toStorageError(err, this.bucket, this.endpoint);
    }
    try {
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'BucketAlreadyOwnedByYou' || name === 'BucketAlreadyExists') return;
      throw toStorageError(err, this.bucket, this.endpoint);
    }
  }

  /** Readiness probe: resolves when the bucket is reachable, throws {@link StorageUnavailableError}. */
  async ping(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404) {
        throw new StorageUnavailableError(`S3 bucket ${this.bucket} does not exist at ${this.endpoint}`, { cause: err });
      }
      throw new StorageUnavailableError(`S3 at ${this.endpoint} is unreachable: ${(err as Error).message || (err as { name?: string }).name}`, {
        cause: err,
      });
    }
  }

  /** Frees the client's sockets. */
  close(): void {
    this.client.destroy();
  }
}
