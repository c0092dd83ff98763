import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { IncomingMessage } from 'node:http';
import { dirname } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** An object as s3rver 3.7.1's controllers hand it to the store (`lib/models/object.js`). */
interface S3rverObject {
  bucket: string;
  key: string;
  /** The HTTP request itself for PutObject; a concatenation of part files for CompleteMultipartUpload. */
  content: Readable | Buffer;
  metadata: Record<string, string>;
}

/** The parts of s3rver 3.7.1's `FilesystemStore` (`lib/stores/filesystem.js`) that putObject uses. */
export interface S3rverFilesystemStore {
  getResourcePath(bucket: string, key: string, resource: string): string;
  putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5?: string): Promise<void>;
  putObject(object: S3rverObject): Promise<{ size: number; md5: string }>;
}

/** Suffix of the file an upload is written to before it becomes the object (never listed: s3rver lists `*._S3rver_object`). */
const PARTIAL_SUFFIX = '.partial';

/**
 * Makes the store's PutObject atomic, as S3's is: s3rver writes the request body straight into
 * the object's file, so an upload cut off mid-body leaves a truncated object (and a reader during
 * an upload sees part of it). Here the body goes to a temporary file next to the object, which is
 * renamed over the object only once the whole body arrived (its length equal to the request's
 * `content-length`) and is on disk; an aborted or short upload deletes the temporary file and
 * leaves the previous object, or none. The etag and metadata files are written after the rename,
 * as s3rver does (a reader in between may see the new body with the previous etag). Also makes the
 * PUT answer only after the file is written (s3rver resolves when the body was read, not flushed).
 * CompleteMultipartUpload goes through the same method, so it is atomic too.
 */
export function makePutObjectAtomic(store: S3rverFilesystemStore): void {
  store.putObject = async function atomicPutObject(object) {
    const objectPath = store.getResourcePath(object.bucket, object.key, 'object');
    await mkdir(dirname(objectPath), { recursive: true });
    const partial = `${objectPath}.${randomBytes(6).toString('hex')}${PARTIAL_SUFFIX}`;
    const md5 = createHash('md5');
    let size = 0;
    try {
      if (Buffer.isBuffer(object.content)) {
        md5.update(object.content);
        size = object.content.length;
        await writeFile(partial, object.content);
      } else {
        const count = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            md5.update(chunk);
            size += chunk.length;
            cb(null, chunk);
          },
        });
        // pipeline rejects when the request is aborted (premature close), unlike s3rver's .pipe().
        await pipeline(object.content, count, createWriteStream(partial));
        const declared = object.content instanceof IncomingMessage ? object.content.headers['content-length'] : undefined;
        if (declared !== undefined && Number(declared) !== size) {
          throw new Error(`upload of ${object.key} ended after ${size} of ${declared} bytes`);
        }
      }
      await rename(partial, objectPath);
    } catch (err) {
      await unlink(partial).catch(() => undefined);
      throw err;
    }
    const digest = md5.digest('hex');
    await store.putMetadata(object.bucket, object.key, object.metadata, digest);
    return { size, md5: digest };
  };
}
