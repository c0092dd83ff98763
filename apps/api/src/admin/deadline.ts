import { ApiError } from '../errors.js';

/**
 * `work`, or 503 `service_unavailable` naming `what` when it fails or takes longer than
 * `timeoutMs`: some connections (the webhook queue's) wait for Redis indefinitely, and an admin
 * page polled during an outage must say so rather than hang.
 */
export async function withDeadline<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([work, deadline]);
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError('service_unavailable', `${what} is unavailable: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
    work.catch(() => undefined); // settled after the deadline: nobody is waiting for it
  }
}
