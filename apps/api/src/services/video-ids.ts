import { randomFillSync } from 'node:crypto';
import { isVideoId, type VideoId } from '@rehyat/contracts';

const POOL_BYTES = 16 * 256;
let pool = Buffer.alloc(0);
let offset = 0;

/**
 * A new video id in the contract's format (`video_` + 32 lowercase hex = 128 random bits), like
 * `newVideoId()` from `@rehyat/contracts`, but drawing its bytes from a pool refilled by one
 * `randomFillSync` per 256 ids: one CSPRNG call per id cost more CPU than the rest of id
 * handling on the creation hot path. Every byte is used once.
 */
export function newPooledVideoId(): VideoId {
  if (offset + 16 > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
    offset = 0;
  }
  const id = `video_${pool.toString('hex', offset, offset + 16)}`;
  offset += 16;
  if (!isVideoId(id)) throw new Error(`generated an invalid video id: ${id}`);
  return id;
}
